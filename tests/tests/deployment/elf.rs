//! Tells from an ELF file's headers whether it is a statically linked
//! x86_64 executable, so the test needs neither `file` nor `ldd`.
//!
//! Static means no program interpreter (`PT_INTERP`) and no shared library
//! in the dynamic section (`DT_NEEDED`). Rust's musl target builds a
//! static position-independent executable: it has a dynamic section for
//! its own relocations, but names no library.

const ELF_MAGIC: &[u8] = b"\x7fELF";
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EM_X86_64: u16 = 62;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
/// Size of one `Elf64_Dyn` entry: a tag and a value of 8 bytes each.
const DYNAMIC_ENTRY_SIZE: usize = 16;

/// Checks that `bytes` is a little-endian ELF64 executable for x86_64 that
/// needs no interpreter and no shared library, and returns the reason when
/// it is not.
pub fn check_static_x86_64(bytes: &[u8]) -> Result<(), String> {
    if bytes.get(..4) != Some(ELF_MAGIC) {
        return Err("not an ELF file".to_owned());
    }
    if bytes.get(4) != Some(&ELFCLASS64) || bytes.get(5) != Some(&ELFDATA2LSB) {
        return Err("not a little-endian 64-bit ELF file".to_owned());
    }
    let machine = read_u16(bytes, 0x12)?;
    if machine != EM_X86_64 {
        return Err(format!(
            "built for machine {machine}, not x86_64 ({EM_X86_64})"
        ));
    }

    let table_offset = to_usize(read_u64(bytes, 0x20)?)?;
    let entry_size = usize::from(read_u16(bytes, 0x36)?);
    let entry_count = usize::from(read_u16(bytes, 0x38)?);
    for index in 0..entry_count {
        let header = table_offset.saturating_add(index * entry_size);
        let segment_type = read_u32(bytes, header)?;
        let offset = to_usize(read_u64(bytes, header + 8)?)?;
        let size = to_usize(read_u64(bytes, header + 32)?)?;
        if segment_type == PT_INTERP {
            let interpreter = bytes
                .get(offset..offset.saturating_add(size))
                .unwrap_or_default();
            return Err(format!(
                "dynamically linked: its program interpreter is {}",
                String::from_utf8_lossy(interpreter).trim_end_matches('\0')
            ));
        }
        if segment_type == PT_DYNAMIC {
            check_no_needed_library(bytes, offset, size)?;
        }
    }
    Ok(())
}

/// Walks the dynamic section up to `DT_NULL` and rejects a `DT_NEEDED`
/// entry.
fn check_no_needed_library(bytes: &[u8], offset: usize, size: usize) -> Result<(), String> {
    for entry in (offset..offset.saturating_add(size)).step_by(DYNAMIC_ENTRY_SIZE) {
        match read_u64(bytes, entry)? {
            DT_NULL => return Ok(()),
            DT_NEEDED => {
                return Err("dynamically linked: it needs a shared library (DT_NEEDED)".to_owned());
            }
            _ => {}
        }
    }
    Ok(())
}

fn read_u16(bytes: &[u8], offset: usize) -> Result<u16, String> {
    read_array(bytes, offset).map(u16::from_le_bytes)
}

fn read_u32(bytes: &[u8], offset: usize) -> Result<u32, String> {
    read_array(bytes, offset).map(u32::from_le_bytes)
}

fn read_u64(bytes: &[u8], offset: usize) -> Result<u64, String> {
    read_array(bytes, offset).map(u64::from_le_bytes)
}

fn read_array<const N: usize>(bytes: &[u8], offset: usize) -> Result<[u8; N], String> {
    bytes
        .get(offset..offset.saturating_add(N))
        .and_then(|slice| slice.try_into().ok())
        .ok_or_else(|| format!("truncated ELF file: no {N} bytes at offset {offset}"))
}

fn to_usize(value: u64) -> Result<usize, String> {
    usize::try_from(value).map_err(|_| format!("ELF offset {value} does not fit in memory"))
}
