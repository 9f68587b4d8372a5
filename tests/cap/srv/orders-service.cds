using { gateway.test as db } from '../db/schema';

// Writable service without login. A read without $top returns 5 orders and
// a next link (@odata.nextLink in V4, __next in V2), so the 12 seeded orders
// span three pages. The OData V2 adapter serves it at /odata/v2/orders/.
@path: 'orders'
service OrdersService {
  @cds.query.limit: { default: 5, max: 1000 }
  entity Orders as projection on db.Orders;

  entity OrderItems as projection on db.OrderItems;
}
