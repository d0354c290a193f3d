"""The audit trail (审计): one hash-chained event per GraphQL request, per tenant."""
