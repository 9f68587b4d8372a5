using { gateway.test as db } from '../db/schema';

// Same data as CatalogService, but anonymous requests get 401, so tests can
// check that the gateway forwards credentials.
@path: 'secure'
@requires: 'authenticated-user'
service SecureService {
  @readonly
  @cds.query.limit: { default: 20, max: 1000 }
  entity Books as projection on db.Books;
}
