//! Requests to the resources of `ZGW_TEST_SRV`, shared by plain requests and
//! the parts of a `$batch` request.

use http::header::{ACCEPT_ENCODING, ETAG, IF_MATCH, LOCATION};
use http::{HeaderMap, Method, StatusCode};
use serde_json::{Map, Value};

use super::items::{Item, ItemStore, json_string};
use super::reply::{Reply, TEXT, xml_error};

/// Items per page of a read of `Items` without `$top`.
const PAGE_SIZE: usize = 5;

/// `sap-message` header of `Items('1')`, as raw UTF-8, because SAP Gateway
/// sends message texts in the logon language without encoding them.
const SAP_MESSAGE: &str = r#"{"code":"ZGW/002","message":"Größe geändert","severity":"info"}"#;

/// One request to a resource of the service.
#[derive(Debug)]
pub(super) struct ServiceRequest<'a> {
    /// The method after `X-HTTP-Method` tunnelling.
    pub(super) method: Method,
    /// The percent-decoded path below the service root, such as
    /// `Items('1')`.
    pub(super) resource: &'a str,
    pub(super) query: Option<&'a str>,
    pub(super) headers: &'a HeaderMap,
    pub(super) body: &'a [u8],
}

/// Handles a request to the service. `service_root` is the absolute URL of
/// the service with a trailing slash.
pub(super) fn handle(items: &mut ItemStore, service_root: &str, request: &ServiceRequest) -> Reply {
    let (name, key, rest) = match split_resource(request.resource) {
        Some(parts) => parts,
        None => return not_found(request.resource),
    };
    let method = &request.method;
    match (name, key, rest) {
        ("Fail", None, "") => xml_error(
            StatusCode::BAD_REQUEST,
            "ZGW/001",
            "Item is locked by user MÜLLER",
        ),
        ("CloudConnector", None, "") => Reply::with_body(
            StatusCode::SERVICE_UNAVAILABLE,
            TEXT,
            "There is no SAP Cloud Connector (SCC) connected to your subaccount. \
             Check that the Cloud Connector runs and uses the location ID of the destination.",
        ),
        ("EmptyBadGateway", None, "") => Reply::empty(StatusCode::BAD_GATEWAY),
        ("Items", None, "") if method == Method::GET => list(items, service_root, request),
        ("Items", None, "") if method == Method::POST => create(items, service_root, request),
        ("Items", Some(key), "") if method == Method::GET => read(items, service_root, &key),
        ("Items", Some(key), "") if method == Method::DELETE => delete(items, &key, request),
        ("Items", Some(key), "") if is_update(method) => update(items, &key, request),
        ("Items", Some(key), "/$value") if method == Method::GET => media(items, &key, request),
        ("Items", Some(key), "/ToSupplier") if method == Method::GET => {
            supplier(items, service_root, &key)
        }
        ("Suppliers", Some(key), "") if method == Method::GET => {
            let id = key.strip_prefix('S').unwrap_or(&key).to_owned();
            supplier(items, service_root, &id)
        }
        ("Items" | "Suppliers", _, "" | "/$value" | "/ToSupplier") => xml_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "/IWBEP/CM_MGW_RT/021",
            &format!(
                "Method '{method}' is not allowed for resource '{}'",
                request.resource
            ),
        ),
        _ => not_found(request.resource),
    }
}

fn is_update(method: &Method) -> bool {
    *method == Method::PUT || *method == Method::PATCH || method.as_str() == "MERGE"
}

/// Splits `Items('1')/$value` into the entity set, the key and the rest.
fn split_resource(resource: &str) -> Option<(&str, Option<String>, &str)> {
    let end = resource.find('/').unwrap_or(resource.len());
    let (segment, rest) = resource.split_at(end);
    match segment.split_once('(') {
        None => Some((segment, None, rest)),
        Some((name, key)) => {
            let key = key.strip_suffix(')')?;
            let key = key.strip_prefix("ID=").unwrap_or(key);
            let key = key.strip_prefix('\'')?.strip_suffix('\'')?;
            Some((name, Some(key.replace("''", "'")), rest))
        }
    }
}

fn not_found(resource: &str) -> Reply {
    xml_error(
        StatusCode::NOT_FOUND,
        "/IWBEP/CM_MGW_RT/020",
        &format!("Resource not found for segment '{resource}'"),
    )
}

fn item_not_found(key: &str) -> Reply {
    xml_error(
        StatusCode::NOT_FOUND,
        "/IWBEP/CM_MGW_RT/020",
        &format!("Resource not found for segment 'Items('{key}')'"),
    )
}

/// Reads `Items`: pages of [`PAGE_SIZE`] with an absolute `__next` that
/// keeps the other query options, or exactly `$top` items without one.
fn list(items: &ItemStore, service_root: &str, request: &ServiceRequest) -> Reply {
    let query = match Query::parse(request.query) {
        Ok(query) => query,
        Err(message) => return invalid_request(&message),
    };
    let all = items.all();
    let offset = query.skip + query.skip_token;
    let limit = query.top.unwrap_or(PAGE_SIZE);
    let page: Vec<String> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|item| item.to_json(service_root))
        .collect();

    let mut body = String::from(r#"{"d":{"#);
    if query.inline_count {
        body.push_str(&format!(r#""__count":"{}","#, all.len()));
    }
    body.push_str(&format!(r#""results":[{}]"#, page.join(",")));
    if query.top.is_none() && offset + PAGE_SIZE < all.len() {
        let mut next = format!("{service_root}Items?");
        for option in &query.other_options {
            next.push_str(option);
            next.push('&');
        }
        next.push_str(&format!("$skiptoken={}", query.skip_token + PAGE_SIZE));
        body.push_str(&format!(r#","__next":{}"#, json_string(&next)));
    }
    body.push_str("}}");

    let reply = Reply::json(StatusCode::OK, body);
    if accepts_gzip(request.headers) {
        reply.gzip()
    } else {
        reply
    }
}

fn read(items: &ItemStore, service_root: &str, key: &str) -> Reply {
    let Some(item) = items.get(key) else {
        return item_not_found(key);
    };
    let reply = Reply::json(
        StatusCode::OK,
        format!(r#"{{"d":{}}}"#, item.to_json(service_root)),
    )
    .header(ETAG, &item.etag());
    if item.id == "1" {
        reply.header_bytes("sap-message", SAP_MESSAGE.as_bytes())
    } else {
        reply
    }
}

fn create(items: &mut ItemStore, service_root: &str, request: &ServiceRequest) -> Reply {
    let fields = match parse_fields(request.body) {
        Ok(fields) => fields,
        Err(message) => return invalid_request(&message),
    };
    let id = match text_field(&fields, "ID") {
        Ok(Some(id)) => id,
        Ok(None) => items.next_id(),
        Err(message) => return invalid_request(&message),
    };
    // Keys are written into URLs unescaped, so only URL-safe keys are taken.
    if !is_valid_key(&id) {
        return invalid_request(&format!(
            "invalid ID '{id}': use letters, digits, '_' and '-'"
        ));
    }

    let mut item = Item {
        id,
        name: String::new(),
        price: "0.000".to_owned(),
        quantity: "0".to_owned(),
        changed_at: 0,
    };
    if let Err(message) = apply_fields(&mut item, &fields) {
        return invalid_request(&message);
    }
    // A fixed clock keeps responses the same from run to run.
    item.changed_at = items
        .all()
        .iter()
        .map(|item| item.changed_at)
        .max()
        .unwrap_or(0)
        + 1000;

    if !items.insert(item.clone()) {
        return xml_error(
            StatusCode::BAD_REQUEST,
            "ZGW/003",
            &format!("Item '{}' already exists", item.id),
        );
    }

    Reply::json(
        StatusCode::CREATED,
        format!(r#"{{"d":{}}}"#, item.to_json(service_root)),
    )
    .header(LOCATION, &item.uri(service_root))
    .header(ETAG, &item.etag())
}

fn is_valid_key(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

/// Handles `PUT`, which replaces the properties, and `MERGE` and `PATCH`,
/// which change only the properties sent. All need `If-Match`.
fn update(items: &mut ItemStore, key: &str, request: &ServiceRequest) -> Reply {
    let Some(item) = items.get_mut(key) else {
        return item_not_found(key);
    };
    match precondition(item, request.headers) {
        Precondition::Matches => {}
        Precondition::Missing => {
            return xml_error(
                StatusCode::PRECONDITION_REQUIRED,
                "/IWBEP/CM_MGW_RT/025",
                "Precondition required: send If-Match with the entity's ETag",
            );
        }
        Precondition::Stale => return stale(),
    }
    let fields = match parse_fields(request.body) {
        Ok(fields) => fields,
        Err(message) => return invalid_request(&message),
    };
    if let Ok(Some(id)) = text_field(&fields, "ID")
        && id != item.id
    {
        return invalid_request("the key ID cannot be changed");
    }

    let mut changed = item.clone();
    if request.method == Method::PUT {
        changed.name = String::new();
        changed.price = "0.000".to_owned();
        changed.quantity = "0".to_owned();
    }
    if let Err(message) = apply_fields(&mut changed, &fields) {
        return invalid_request(&message);
    }
    changed.touch();
    *item = changed;
    Reply::empty(StatusCode::NO_CONTENT)
        .header(ETAG, &item.etag())
        .header_static("dataserviceversion", "2.0")
}

fn delete(items: &mut ItemStore, key: &str, request: &ServiceRequest) -> Reply {
    let Some(item) = items.get(key) else {
        return item_not_found(key);
    };
    if let Precondition::Stale = precondition(item, request.headers) {
        return stale();
    }
    items.remove(key);
    Reply::empty(StatusCode::NO_CONTENT).header_static("dataserviceversion", "2.0")
}

/// Returns about 5 KB of text as the media resource of an item, compressed
/// when the client accepts gzip.
fn media(items: &ItemStore, key: &str, request: &ServiceRequest) -> Reply {
    if items.get(key).is_none() {
        return item_not_found(key);
    }
    let content = format!("Media content of item {key}.\n").repeat(200);
    let reply = Reply::with_body(StatusCode::OK, "application/octet-stream", content);
    if accepts_gzip(request.headers) {
        reply.gzip()
    } else {
        reply
    }
}

/// Returns the supplier of an item. Every item has its own supplier, with
/// key `S` followed by the item key.
fn supplier(items: &ItemStore, service_root: &str, item_key: &str) -> Reply {
    if items.get(item_key).is_none() {
        return item_not_found(item_key);
    }
    let uri = json_string(&format!("{service_root}Suppliers('S{item_key}')"));
    Reply::json(
        StatusCode::OK,
        format!(
            r#"{{"d":{{"__metadata":{{"id":{uri},"uri":{uri},"type":"ZGW_TEST_SRV.Supplier"}},"ID":{},"Name":{}}}}}"#,
            json_string(&format!("S{item_key}")),
            json_string(&format!("Supplier of item {item_key}")),
        ),
    )
}

enum Precondition {
    Matches,
    Missing,
    Stale,
}

/// Compares `If-Match` with the item's ETag. `*` and lists of ETags are
/// accepted.
fn precondition(item: &Item, headers: &HeaderMap) -> Precondition {
    let values: Vec<&str> = headers
        .get_all(IF_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    if values.is_empty() {
        return Precondition::Missing;
    }
    let etag = item.etag();
    let matches = values
        .iter()
        .flat_map(|value| split_etags(value))
        .any(|candidate| candidate == "*" || candidate == etag);
    if matches {
        Precondition::Matches
    } else {
        Precondition::Stale
    }
}

/// Splits an `If-Match` value at the commas between ETags. The ETags of
/// this backend contain no commas.
fn split_etags(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|etag| !etag.is_empty())
}

fn stale() -> Reply {
    xml_error(
        StatusCode::PRECONDITION_FAILED,
        "/IWBEP/CM_MGW_RT/022",
        "Precondition failed: the entity was changed since it was read",
    )
}

fn invalid_request(message: &str) -> Reply {
    xml_error(StatusCode::BAD_REQUEST, "/IWBEP/CM_MGW_RT/004", message)
}

/// Parses a JSON object, also in the `{"d":{...}}` wrapper of responses.
fn parse_fields(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut fields)) => match fields.remove("d") {
            Some(Value::Object(inner)) => Ok(inner),
            Some(other) => {
                fields.insert("d".to_owned(), other);
                Ok(fields)
            }
            None => Ok(fields),
        },
        Ok(_) => Err("the request body must be a JSON object".to_owned()),
        Err(error) => Err(format!("the request body is not valid JSON: {error}")),
    }
}

/// Returns a property as text. Numbers keep the digits serde_json parsed.
fn text_field(fields: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(Value::Number(number)) => Ok(Some(number.to_string())),
        Some(_) => Err(format!("property {name} must be a string or a number")),
    }
}

fn apply_fields(item: &mut Item, fields: &Map<String, Value>) -> Result<(), String> {
    if let Some(name) = text_field(fields, "Name")? {
        item.name = name;
    }
    if let Some(price) = text_field(fields, "Price")? {
        item.price = price;
    }
    if let Some(quantity) = text_field(fields, "Quantity")? {
        item.quantity = quantity;
    }
    Ok(())
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.to_ascii_lowercase().contains("gzip"))
}

/// The query options of a read of `Items`.
#[derive(Debug, Default)]
struct Query {
    skip: usize,
    skip_token: usize,
    top: Option<usize>,
    inline_count: bool,
    /// Every option except `$skiptoken`, as sent, for the `__next` link.
    other_options: Vec<String>,
}

impl Query {
    fn parse(query: Option<&str>) -> Result<Self, String> {
        let mut parsed = Self::default();
        for option in query
            .unwrap_or("")
            .split('&')
            .filter(|option| !option.is_empty())
        {
            let (name, value) = option.split_once('=').unwrap_or((option, ""));
            let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
            match name.as_ref() {
                "$skiptoken" => parsed.skip_token = parse_count(&name, value)?,
                "$skip" => parsed.skip = parse_count(&name, value)?,
                "$top" => parsed.top = Some(parse_count(&name, value)?),
                "$inlinecount" => parsed.inline_count = value == "allpages",
                _ => {}
            }
            if name != "$skiptoken" {
                parsed.other_options.push(option.to_owned());
            }
        }
        Ok(parsed)
    }
}

fn parse_count(name: &str, value: &str) -> Result<usize, String> {
    value
        .parse()
        .map_err(|_| format!("Invalid value '{value}' for system query option {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_resource_forms() {
        assert_eq!(split_resource("Items"), Some(("Items", None, "")));
        assert_eq!(
            split_resource("Items('1')/$value"),
            Some(("Items", Some("1".to_owned()), "/$value"))
        );
        assert_eq!(
            split_resource("Items(ID='a''b')"),
            Some(("Items", Some("a'b".to_owned()), ""))
        );
        assert_eq!(split_resource("Items(1)"), None);
    }
}
