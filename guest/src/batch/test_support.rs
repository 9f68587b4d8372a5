//! Line-end conversions shared by the batch tests.

/// Returns `body` with every bare LF turned into CRLF.
pub(crate) fn to_crlf(body: &[u8]) -> Vec<u8> {
    let mut output = Vec::with_capacity(body.len() + body.len() / 16);
    let mut previous = None;
    for &byte in body {
        if byte == b'\n' && previous != Some(b'\r') {
            output.push(b'\r');
        }
        output.push(byte);
        previous = Some(byte);
    }
    output
}

/// Returns `body` with every CRLF turned into a bare LF.
pub(crate) fn to_lf(body: &[u8]) -> Vec<u8> {
    let mut output = Vec::with_capacity(body.len());
    for (index, &byte) in body.iter().enumerate() {
        let before_lf = body.get(index + 1) == Some(&b'\n');
        if !(byte == b'\r' && before_lf) {
            output.push(byte);
        }
    }
    output
}

#[test]
fn line_end_conversions_round_trip() {
    assert_eq!(to_crlf(b"a\nb\r\nc\r"), b"a\r\nb\r\nc\r");
    assert_eq!(to_lf(b"a\r\nb\nc\r"), b"a\nb\nc\r");
    assert_eq!(to_lf(&to_crlf(b"x\n\ny\n")), b"x\n\ny\n");
}
