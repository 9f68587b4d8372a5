namespace gateway.test;

// String keys, so that tests can use keys that need escaping in OData URLs
// (a '/' must be percent-encoded and a single quote doubled).
entity Books {
  key ID       : String(40);
      title    : String;
      price    : Decimal(9, 2);
      stock    : Integer;
      currency : String(3);
}
