//! `$metadata` documents with an ETag and `If-None-Match` handling: a small
//! one for `ZGW_TEST_SRV` and a generated one of about 8 MB for
//! `ZGW_BIG_SRV`.

use std::fmt::Write as _;
use std::sync::OnceLock;

use bytes::Bytes;
use http::header::{ETAG, IF_NONE_MATCH};
use http::{HeaderMap, StatusCode};

use super::Counters;
use super::reply::{Reply, XML};

/// ETag of every `$metadata` document. The documents never change while the
/// backend runs.
pub(super) const METADATA_ETAG: &str = "W/\"m1\"";

/// Entity types in the big document. Each renders to about 2 KB, so the
/// document is about 8 MB.
const BIG_ENTITY_TYPES: usize = 4000;

/// Properties of each entity type in the big document, the key included.
const BIG_PROPERTIES: usize = 20;

const EDMX_OPEN: &str = concat!(
    r#"<?xml version="1.0" encoding="utf-8"?>"#,
    r#"<edmx:Edmx Version="1.0" xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx" "#,
    r#"xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata" "#,
    r#"xmlns:sap="http://www.sap.com/Protocols/SAPData">"#,
    r#"<edmx:DataServices m:DataServiceVersion="2.0">"#,
);

const TEST_SCHEMA: &str = concat!(
    r#"<Schema Namespace="ZGW_TEST_SRV" xml:lang="en" sap:schema-version="1" "#,
    r#"xmlns="http://schemas.microsoft.com/ado/2008/09/edm">"#,
    r#"<EntityType Name="Item" m:HasStream="true" sap:content-version="1">"#,
    r#"<Key><PropertyRef Name="ID"/></Key>"#,
    r#"<Property Name="ID" Type="Edm.String" Nullable="false" MaxLength="20" sap:label="Item"/>"#,
    r#"<Property Name="Name" Type="Edm.String" MaxLength="80" sap:label="Name"/>"#,
    r#"<Property Name="Price" Type="Edm.Decimal" Precision="15" Scale="3" sap:label="Price"/>"#,
    r#"<Property Name="Quantity" Type="Edm.Int64" sap:label="Quantity"/>"#,
    r#"<Property Name="ChangedAt" Type="Edm.DateTime" Precision="0" ConcurrencyMode="Fixed" "#,
    r#"sap:label="Changed at"/>"#,
    r#"<NavigationProperty Name="ToSupplier" Relationship="ZGW_TEST_SRV.ItemSupplier" "#,
    r#"FromRole="FromRole_ItemSupplier" ToRole="ToRole_ItemSupplier"/>"#,
    r#"</EntityType>"#,
    r#"<EntityType Name="Supplier" sap:content-version="1">"#,
    r#"<Key><PropertyRef Name="ID"/></Key>"#,
    r#"<Property Name="ID" Type="Edm.String" Nullable="false" MaxLength="21"/>"#,
    r#"<Property Name="Name" Type="Edm.String" MaxLength="80"/>"#,
    r#"</EntityType>"#,
    r#"<EntityType Name="LargeEntry" sap:content-version="1">"#,
    r#"<Key><PropertyRef Name="ID"/></Key>"#,
    r#"<Property Name="ID" Type="Edm.String" Nullable="false" MaxLength="10"/>"#,
    r#"<Property Name="Payload" Type="Edm.String"/>"#,
    r#"</EntityType>"#,
    r#"<Association Name="ItemSupplier" sap:content-version="1">"#,
    r#"<End Type="ZGW_TEST_SRV.Item" Multiplicity="1" Role="FromRole_ItemSupplier"/>"#,
    r#"<End Type="ZGW_TEST_SRV.Supplier" Multiplicity="1" Role="ToRole_ItemSupplier"/>"#,
    r#"</Association>"#,
    r#"<EntityContainer Name="ZGW_TEST_SRV_Entities" m:IsDefaultEntityContainer="true" "#,
    r#"sap:supported-formats="atom json xlsx">"#,
    r#"<EntitySet Name="Items" EntityType="ZGW_TEST_SRV.Item" sap:content-version="1"/>"#,
    r#"<EntitySet Name="Suppliers" EntityType="ZGW_TEST_SRV.Supplier" sap:content-version="1"/>"#,
    r#"<EntitySet Name="Large" EntityType="ZGW_TEST_SRV.LargeEntry" sap:content-version="1"/>"#,
    r#"<AssociationSet Name="ItemSupplierSet" Association="ZGW_TEST_SRV.ItemSupplier" "#,
    r#"sap:content-version="1">"#,
    r#"<End EntitySet="Items" Role="FromRole_ItemSupplier"/>"#,
    r#"<End EntitySet="Suppliers" Role="ToRole_ItemSupplier"/>"#,
    r#"</AssociationSet>"#,
    r#"</EntityContainer>"#,
);

/// The documents of both services, each with absolute links to itself.
#[derive(Debug)]
pub(super) struct MetadataDocuments {
    origin: String,
    test: Bytes,
    /// Generated at the first request, because most tests never read it.
    big: OnceLock<Bytes>,
}

/// The services that serve a `$metadata` document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MetadataService {
    Test,
    Big,
}

impl MetadataDocuments {
    pub(super) fn new(origin: &str) -> Self {
        let mut test = String::from(EDMX_OPEN);
        test.push_str(TEST_SCHEMA);
        test.push_str(&self_links(origin, "ZGW_TEST_SRV"));
        test.push_str("</Schema></edmx:DataServices></edmx:Edmx>");
        Self {
            origin: origin.to_owned(),
            test: Bytes::from(test),
            big: OnceLock::new(),
        }
    }

    /// Returns the document of a service.
    pub(super) fn document(&self, service: MetadataService) -> Bytes {
        match service {
            MetadataService::Test => self.test.clone(),
            MetadataService::Big => self
                .big
                .get_or_init(|| Bytes::from(big_document(&self.origin)))
                .clone(),
        }
    }

    /// Responds with the document, or with 304 when `If-None-Match` names
    /// its ETag, and counts which of the two it sent.
    pub(super) fn respond(
        &self,
        service: MetadataService,
        headers: &HeaderMap,
        counters: &Counters,
    ) -> Reply {
        if is_not_modified(headers) {
            Counters::increment(&counters.metadata_not_modified);
            return Reply::empty(StatusCode::NOT_MODIFIED).header(ETAG, METADATA_ETAG);
        }
        Counters::increment(&counters.metadata_full_responses);
        Reply::with_body(StatusCode::OK, XML, self.document(service))
            .header(ETAG, METADATA_ETAG)
            .header_static("dataserviceversion", "2.0")
    }
}

/// Checks `If-None-Match` with the weak comparison that RFC 9110 requires
/// for it: `W/"m1"` and `"m1"` both match.
fn is_not_modified(headers: &HeaderMap) -> bool {
    let current = METADATA_ETAG.trim_start_matches("W/");
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|etag| etag.trim().trim_start_matches("W/"))
        .any(|etag| etag == "*" || etag == current)
}

/// Renders the `atom:link` elements that SAP Gateway puts at the end of a
/// schema.
fn self_links(origin: &str, service: &str) -> String {
    let href = format!("{origin}/sap/opu/odata/sap/{service}/$metadata");
    format!(
        concat!(
            r#"<atom:link rel="self" href="{href}" xmlns:atom="http://www.w3.org/2005/Atom"/>"#,
            r#"<atom:link rel="latest-version" href="{href}" xmlns:atom="http://www.w3.org/2005/Atom"/>"#
        ),
        href = href
    )
}

/// Generates the `ZGW_BIG_SRV` document: [`BIG_ENTITY_TYPES`] entity types
/// with [`BIG_PROPERTIES`] properties each, and one entity set per type.
fn big_document(origin: &str) -> String {
    let mut document = String::with_capacity(9 * 1024 * 1024);
    document.push_str(EDMX_OPEN);
    document.push_str(concat!(
        r#"<Schema Namespace="ZGW_BIG_SRV" xml:lang="en" sap:schema-version="1" "#,
        r#"xmlns="http://schemas.microsoft.com/ado/2008/09/edm">"#,
    ));
    for number in 0..BIG_ENTITY_TYPES {
        // Writing to a String cannot fail.
        let _ = write!(
            document,
            r#"<EntityType Name="Type{number:04}" sap:content-version="1"><Key><PropertyRef Name="Key"/></Key>"#
        );
        document.push_str(
            r#"<Property Name="Key" Type="Edm.String" Nullable="false" MaxLength="40" sap:label="Key"/>"#,
        );
        for property in 1..BIG_PROPERTIES {
            let _ = write!(
                document,
                r#"<Property Name="Field{property:02}" Type="Edm.String" MaxLength="80" sap:label="Field {property} of type {number}"/>"#
            );
        }
        document.push_str("</EntityType>");
    }
    document.push_str(
        r#"<EntityContainer Name="ZGW_BIG_SRV_Entities" m:IsDefaultEntityContainer="true">"#,
    );
    for number in 0..BIG_ENTITY_TYPES {
        let _ = write!(
            document,
            r#"<EntitySet Name="Set{number:04}" EntityType="ZGW_BIG_SRV.Type{number:04}"/>"#
        );
    }
    document.push_str("</EntityContainer>");
    document.push_str(&self_links(origin, "ZGW_BIG_SRV"));
    document.push_str("</Schema></edmx:DataServices></edmx:Edmx>");
    document
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_document_is_about_8_mb() {
        let size = big_document("http://127.0.0.1:1").len();
        assert!(
            (7_000_000..10_000_000).contains(&size),
            "document is {size} bytes"
        );
    }

    #[test]
    fn if_none_match_weak_comparison() {
        let mut headers = HeaderMap::new();
        headers.insert(
            IF_NONE_MATCH,
            http::HeaderValue::from_static("\"x\", \"m1\""),
        );
        assert!(is_not_modified(&headers));
        headers.insert(IF_NONE_MATCH, http::HeaderValue::from_static("W/\"m2\""));
        assert!(!is_not_modified(&headers));
    }
}
