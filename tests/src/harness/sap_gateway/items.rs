//! The `Items` entity set: its store, the V2 JSON verbose format of an item
//! and the ETag derived from `ChangedAt`.

/// `ChangedAt` of the seeded items, 2023-01-01T00:00:00Z, in milliseconds
/// since the Unix epoch.
const SEEDED_CHANGED_AT: i64 = 1_672_531_200_000;

/// Prices of the seeded items. Several end in zeros, so tests see whether
/// a client keeps them.
const SEEDED_PRICES: [&str; 12] = [
    "12.500", "100.000", "0.100", "2500.000", "7.250", "13.700", "0.000", "99.990", "1.500",
    "42.000", "3.330", "1000.010",
];

/// Quantities of the seeded items. Some exceed 2^53, so a client that parses
/// them as a double changes them.
const SEEDED_QUANTITIES: [&str; 12] = [
    "9007199254740993",
    "1",
    "2",
    "9007199254740993",
    "10",
    "20",
    "0",
    "9223372036854775807",
    "5",
    "3",
    "9007199254740995",
    "7",
];

/// One item. Price and quantity keep the text the client sent, as SAP
/// Gateway sends `Edm.Decimal` and `Edm.Int64` as JSON strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Item {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) price: String,
    pub(super) quantity: String,
    /// Milliseconds since the Unix epoch. Every update adds one second, so
    /// each update yields a new ETag.
    pub(super) changed_at: i64,
}

impl Item {
    /// Returns the weak ETag in the `datetime'...'` form that SAP Gateway
    /// derives from a timestamp property.
    pub(super) fn etag(&self) -> String {
        let timestamp = format_timestamp(self.changed_at).replace(':', "%3A");
        format!("W/\"datetime'{timestamp}'\"")
    }

    /// Marks the item as changed, which changes its ETag.
    pub(super) fn touch(&mut self) {
        self.changed_at += 1000;
    }

    /// Returns the absolute URL of the item.
    pub(super) fn uri(&self, service_root: &str) -> String {
        format!("{service_root}Items('{}')", self.id)
    }

    /// Renders the item in the V2 JSON verbose format. `ChangedAt` is
    /// written as `"\/Date(ms)\/"` with escaped slashes, as SAP Gateway
    /// writes `Edm.DateTime`.
    pub(super) fn to_json(&self, service_root: &str) -> String {
        let uri = json_string(&self.uri(service_root));
        format!(
            concat!(
                r#"{{"__metadata":{{"id":{uri},"uri":{uri},"type":"ZGW_TEST_SRV.Item","etag":{etag}}},"#,
                r#""ID":{id},"Name":{name},"Price":{price},"Quantity":{quantity},"#,
                r#""ChangedAt":"\/Date({changed_at})\/","#,
                r#""ToSupplier":{{"__deferred":{{"uri":{supplier}}}}}}}"#
            ),
            uri = uri,
            etag = json_string(&self.etag()),
            id = json_string(&self.id),
            name = json_string(&self.name),
            price = json_string(&self.price),
            quantity = json_string(&self.quantity),
            changed_at = self.changed_at,
            supplier = json_string(&format!("{}/ToSupplier", self.uri(service_root))),
        )
    }
}

/// The items, in the order they were created.
#[derive(Debug, Clone)]
pub(super) struct ItemStore {
    items: Vec<Item>,
}

impl ItemStore {
    /// Creates the store with items `1` to `12`.
    pub(super) fn seeded() -> Self {
        let items = SEEDED_PRICES
            .iter()
            .zip(SEEDED_QUANTITIES)
            .zip(1..)
            .map(|((price, quantity), number)| Item {
                id: number.to_string(),
                name: format!("Item {number}"),
                price: (*price).to_owned(),
                quantity: quantity.to_owned(),
                changed_at: SEEDED_CHANGED_AT,
            })
            .collect();
        Self { items }
    }

    pub(super) fn all(&self) -> &[Item] {
        &self.items
    }

    pub(super) fn get(&self, id: &str) -> Option<&Item> {
        self.items.iter().find(|item| item.id == id)
    }

    pub(super) fn get_mut(&mut self, id: &str) -> Option<&mut Item> {
        self.items.iter_mut().find(|item| item.id == id)
    }

    /// Adds an item, or returns `false` when its key is taken.
    pub(super) fn insert(&mut self, item: Item) -> bool {
        if self.get(&item.id).is_some() {
            return false;
        }
        self.items.push(item);
        true
    }

    /// Removes an item, or returns `false` when there is none with that key.
    pub(super) fn remove(&mut self, id: &str) -> bool {
        let before = self.items.len();
        self.items.retain(|item| item.id != id);
        self.items.len() < before
    }

    /// Returns a numeric key one above the largest numeric key.
    pub(super) fn next_id(&self) -> String {
        let largest = self
            .items
            .iter()
            .filter_map(|item| item.id.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        (largest + 1).to_string()
    }
}

/// Serializes text as a JSON string.
pub(super) fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS` in
/// UTC.
fn format_timestamp(milliseconds: i64) -> String {
    let seconds = milliseconds.div_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian date, with
/// Howard Hinnant's `civil_from_days` algorithm.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_of_seeded_items() {
        assert_eq!(format_timestamp(SEEDED_CHANGED_AT), "2023-01-01T00:00:00");
        assert_eq!(format_timestamp(951_782_400_000), "2000-02-29T00:00:00");
        assert_eq!(
            format_timestamp(SEEDED_CHANGED_AT + 3_723_000),
            "2023-01-01T01:02:03"
        );
    }

    #[test]
    fn item_json_escapes_date_slashes() {
        let store = ItemStore::seeded();
        let item = &store.all()[0];
        let json = item.to_json("http://127.0.0.1:1/s/");
        assert!(
            json.contains(r#""ChangedAt":"\/Date(1672531200000)\/""#),
            "{json}"
        );
        assert!(json.contains(r#""Price":"12.500""#), "{json}");
        let parsed: serde_json::Value = match serde_json::from_str(&json) {
            Ok(parsed) => parsed,
            Err(error) => panic!("item JSON does not parse ({error}): {json}"),
        };
        assert_eq!(
            parsed["__metadata"]["uri"],
            "http://127.0.0.1:1/s/Items('1')"
        );
    }
}
