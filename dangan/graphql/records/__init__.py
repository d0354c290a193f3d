"""GraphQL of a customer's records: types, the nested Customer fields, mutations."""
