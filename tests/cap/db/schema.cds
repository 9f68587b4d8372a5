namespace gateway.test;

using { cuid } from '@sap/cds/common';

// String keys, so that tests can use keys that need escaping in OData URLs
// (a '/' must be percent-encoded and a single quote doubled).
entity Books {
  key ID       : String(40);
      title    : String;
      price    : Decimal(9, 2);
      stock    : Integer;
      currency : String(3);
}

// Writable orders for the write, $batch and paging tests. The ETag is the
// modification time, so a write with an older If-Match value fails with 412.
// `amount` keeps three decimals, so values such as 12.500 show whether
// trailing zeros survive, and `quantity` holds values above 2^53, which a
// JSON number parsed as a double would round.
entity Orders : cuid {
  title      : String;
  amount     : Decimal(15, 3);
  quantity   : Int64;
  orderedAt  : DateTime;
  @odata.etag
  modifiedAt : Timestamp @cds.on.insert: $now  @cds.on.update: $now;
  items      : Composition of many OrderItems
                 on items.order = $self;
}

entity OrderItems : cuid {
  order    : Association to Orders;
  product  : String;
  quantity : Integer;
}
