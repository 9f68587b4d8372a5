//! JSON log lines with the field names of SAP's Cloud Foundry logging
//! libraries (`cf-java-logging-support`, `cf-nodejs-logging-support`), so
//! SAP Cloud Logging and the Kibana dashboards SAP ships can read them.
//!
//! Every line has `written_at`, `written_ts`, `level`, `logger`, `msg`,
//! `type` (`log`, or `request` for request logs) and, where known, the
//! request's `correlation_id` and the application's `component_name`,
//! `component_id`, `component_instance`, `organization_name` and
//! `space_name` from `VCAP_APPLICATION`. An event's own fields follow under
//! their names; fields of the request span (`correlation_id`,
//! `request_id`, `tenant_id`) are copied to every line of the request.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The application's identity from `VCAP_APPLICATION`.
#[derive(Debug, Clone, Default)]
pub struct Component {
    fields: Map<String, Value>,
}

impl Component {
    /// Reads the fields SAP's libraries take from `VCAP_APPLICATION` and
    /// `CF_INSTANCE_INDEX`.
    pub fn from_environment(vcap_application: Option<&str>, instance_index: Option<&str>) -> Self {
        let mut fields = Map::new();
        let application: Value = vcap_application
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or(Value::Null);
        for (target, source) in [
            ("component_name", "application_name"),
            ("component_id", "application_id"),
            ("organization_name", "organization_name"),
            ("organization_id", "organization_id"),
            ("space_name", "space_name"),
            ("space_id", "space_id"),
        ] {
            if let Some(value) = application.get(source).and_then(Value::as_str) {
                fields.insert(target.to_owned(), Value::from(value));
            }
        }
        if let Some(index) = instance_index {
            fields.insert("component_instance".to_owned(), Value::from(index));
        }
        fields.insert("component_type".to_owned(), Value::from("application"));
        Self { fields }
    }
}

/// The layer that writes one JSON object per event to standard error.
#[derive(Debug)]
pub struct SapJsonLayer {
    component: Component,
}

impl SapJsonLayer {
    pub fn new(component: Component) -> Self {
        Self { component }
    }
}

/// Span fields kept for the events inside the span.
#[derive(Debug, Default)]
struct SpanFields(Map<String, Value>);

/// Collects an event's or span's fields as JSON values.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.0.insert(name_of(field), Value::from(text));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(name_of(field), Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(name_of(field), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(name_of(field), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(name_of(field), Value::from(value));
    }
}

/// SAP's libraries call the message `msg`.
fn name_of(field: &Field) -> String {
    match field.name() {
        "message" => "msg".to_owned(),
        other => other.to_owned(),
    }
}

impl<S> Layer<S> for SapJsonLayer
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn on_new_span(
        &self,
        attributes: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = SpanFields::default();
        attributes.record(&mut JsonVisitor(&mut fields.0));
        span.extensions_mut().insert(fields);
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(fields) = extensions.get_mut::<SpanFields>() {
            values.record(&mut JsonVisitor(&mut fields.0));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut line = self.component.fields.clone();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        line.insert(
            "written_at".to_owned(),
            Value::from(rfc3339_millis(now.as_secs(), now.subsec_millis())),
        );
        line.insert(
            "written_ts".to_owned(),
            Value::from(now.as_nanos().to_string()),
        );
        line.insert(
            "level".to_owned(),
            Value::from(level_name(event.metadata().level())),
        );
        line.insert("logger".to_owned(), Value::from(event.metadata().target()));
        line.insert("type".to_owned(), Value::from("log"));

        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    for (name, value) in &fields.0 {
                        line.insert(name.clone(), value.clone());
                    }
                }
            }
        }
        event.record(&mut JsonVisitor(&mut line));

        let mut text = Value::Object(line).to_string();
        text.push('\n');
        // A failed write to stderr has nowhere to be reported.
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARN",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

/// Formats a time as RFC 3339 in UTC with milliseconds.
pub(crate) fn format_system_time(time: std::time::SystemTime) -> String {
    let since_epoch = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339_millis(since_epoch.as_secs(), since_epoch.subsec_millis())
}

/// Formats a UTC time as `2026-01-02T03:04:05.678Z`.
fn rfc3339_millis(seconds: u64, millis: u32) -> String {
    let days = seconds / 86_400;
    let time = seconds % 86_400;
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        time / 3600,
        (time % 3600) / 60,
        time % 60
    )
}

/// Converts days since 1970-01-01 to a Gregorian date (Howard Hinnant's
/// `civil_from_days` algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = u32::try_from(day_of_year - (153 * month_index + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    })
    .unwrap_or(1);
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        assert_eq!(rfc3339_millis(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(
            rfc3339_millis(1_796_420_645, 123),
            "2026-12-04T21:44:05.123Z"
        );
    }

    #[test]
    fn component_from_vcap_application() {
        let component = Component::from_environment(
            Some(
                r#"{"application_name":"gateway","application_id":"a-1","space_name":"dev","organization_name":"acme"}"#,
            ),
            Some("2"),
        );
        assert_eq!(component.fields["component_name"], "gateway");
        assert_eq!(component.fields["component_id"], "a-1");
        assert_eq!(component.fields["component_instance"], "2");
        assert_eq!(component.fields["space_name"], "dev");
        assert_eq!(component.fields["organization_name"], "acme");
    }
}
