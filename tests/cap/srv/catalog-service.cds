using { gateway.test as db } from '../db/schema';

// Public read-only catalog. A read without $top returns 20 rows and an
// @odata.nextLink, so tests can follow server-driven paging.
@path: 'catalog'
service CatalogService {
  @readonly
  @cds.query.limit: { default: 20, max: 1000 }
  entity Books as projection on db.Books;
}
