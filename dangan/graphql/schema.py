"""The GraphQL schema: root types wired to thin resolvers."""

from __future__ import annotations

import strawberry
from strawberry.extensions import DisableValidation, ParserCache

from dangan.graphql import archive, attachments
from dangan.graphql import audit as audit_api
from dangan.graphql import backups as backups_api
from dangan.graphql import classification as classification_api
from dangan.graphql import compliance as compliance_api
from dangan.graphql import policies as policy_api
from dangan.graphql import rating as rating_api
from dangan.graphql.alarms import resolvers as alarms_api
from dangan.graphql.changes import resolvers as changes_api
from dangan.graphql.customers import merges
from dangan.graphql.customers.mutations.create_customer import create_customer
from dangan.graphql.customers.mutations.reveal_field import reveal_field
from dangan.graphql.customers.mutations.set_customer_status import set_customer_status
from dangan.graphql.customers.mutations.update_customer import update_customer
from dangan.graphql.customers.queries import customer, customers_connection
from dangan.graphql.execution import BulkLeafExecutor
from dangan.graphql.records import mutations as records
from dangan.graphql.retention import resolvers as retention_api
from dangan.graphql.sharing import resolvers as sharing
from dangan.graphql.viewer import login, me


@strawberry.type
class Query:
    me = strawberry.field(resolver=me, description="Who is calling, in which tenant")
    customer = strawberry.field(resolver=customer)
    customers = strawberry.field(resolver=customers_connection)
    share_requests = strawberry.field(resolver=sharing.share_requests)
    policy_versions = strawberry.field(resolver=policy_api.policy_versions)
    attachment_download_url = strawberry.field(resolver=attachments.attachment_download_url)
    archive_job = strawberry.field(resolver=archive.archive_job)
    archive_jobs = strawberry.field(resolver=archive.archive_jobs_list)
    duplicate_candidates = strawberry.field(resolver=merges.duplicate_candidates)
    rating_history = strawberry.field(resolver=rating_api.rating_history)
    rating_criteria = strawberry.field(resolver=rating_api.rating_criteria)
    rating_job = strawberry.field(resolver=rating_api.rating_job)
    classification_values = strawberry.field(resolver=classification_api.classification_values)
    regions = strawberry.field(resolver=classification_api.regions)
    customer_history = strawberry.field(resolver=changes_api.customer_history)
    pending_changes = strawberry.field(resolver=changes_api.pending_changes)
    alerts = strawberry.field(resolver=alarms_api.alerts_list)
    alert = strawberry.field(resolver=alarms_api.alert)
    alarm_rules = strawberry.field(resolver=alarms_api.alarm_rules)
    alarm_settings = strawberry.field(resolver=alarms_api.alarm_settings)
    compliance_report = strawberry.field(resolver=compliance_api.compliance_report)
    audit_events = strawberry.field(resolver=audit_api.audit_events)
    customer_access_log = strawberry.field(resolver=audit_api.customer_access_log)
    backups = strawberry.field(resolver=backups_api.backups_list)
    backup_runs = strawberry.field(resolver=backups_api.backup_runs)
    backup_run = strawberry.field(resolver=backups_api.backup_run)
    retention_rules = strawberry.field(resolver=retention_api.retention_rules)
    retention_candidates = strawberry.field(resolver=retention_api.retention_candidates)
    legal_holds = strawberry.field(resolver=retention_api.legal_holds)
    destruction_records = strawberry.field(resolver=retention_api.destruction_records)
    retention_preview = strawberry.field(resolver=retention_api.retention_preview)


@strawberry.type
class Mutation:
    login = strawberry.mutation(resolver=login)
    run_backup = strawberry.mutation(resolver=backups_api.run_backup)
    create_customer = strawberry.mutation(resolver=create_customer)
    update_customer = strawberry.mutation(resolver=update_customer)
    reveal_field = strawberry.mutation(resolver=reveal_field)
    request_share = strawberry.mutation(resolver=sharing.request_share)
    approve_share = strawberry.mutation(resolver=sharing.approve_share)
    reject_share = strawberry.mutation(resolver=sharing.reject_share)
    revoke_share = strawberry.mutation(resolver=sharing.revoke_share)
    propose_policy = strawberry.mutation(resolver=policy_api.propose_policy)
    activate_policy = strawberry.mutation(resolver=policy_api.activate_policy)
    request_attachment_upload = strawberry.mutation(resolver=attachments.request_attachment_upload)
    complete_attachment_upload = strawberry.mutation(
        resolver=attachments.complete_attachment_upload
    )
    delete_attachment = strawberry.mutation(resolver=attachments.delete_attachment)
    start_customer_import = strawberry.mutation(resolver=archive.start_import)
    start_customer_export = strawberry.mutation(resolver=archive.start_export)
    approve_export = strawberry.mutation(resolver=archive.approve_export)
    reject_export = strawberry.mutation(resolver=archive.reject_export)
    add_contact_person = strawberry.mutation(resolver=records.add_contact_person)
    add_communication = strawberry.mutation(resolver=records.add_communication)
    add_opportunity = strawberry.mutation(resolver=records.add_opportunity)
    add_purchase = strawberry.mutation(resolver=records.add_purchase)
    add_contract = strawberry.mutation(resolver=records.add_contract)
    add_payment_record = strawberry.mutation(resolver=records.add_payment_record)
    add_customer_need = strawberry.mutation(resolver=records.add_customer_need)
    add_complaint = strawberry.mutation(resolver=records.add_complaint)
    add_satisfaction_survey = strawberry.mutation(resolver=records.add_satisfaction_survey)
    update_contract = strawberry.mutation(resolver=records.update_contract)
    update_complaint = strawberry.mutation(resolver=records.update_complaint)
    update_opportunity = strawberry.mutation(resolver=records.update_opportunity)
    remove_customer_record = strawberry.mutation(resolver=records.remove_customer_record)
    merge_customers = strawberry.mutation(resolver=merges.merge_customers)
    undo_merge = strawberry.mutation(resolver=merges.undo_merge)
    set_rating_criteria = strawberry.mutation(resolver=rating_api.set_rating_criteria)
    recompute_rating = strawberry.mutation(resolver=rating_api.recompute_rating)
    add_classification_value = strawberry.mutation(
        resolver=classification_api.add_classification_value
    )
    rename_classification_value = strawberry.mutation(
        resolver=classification_api.rename_classification_value
    )
    retire_classification_value = strawberry.mutation(
        resolver=classification_api.retire_classification_value
    )
    restore_classification_value = strawberry.mutation(
        resolver=classification_api.restore_classification_value
    )
    set_customer_status = strawberry.mutation(resolver=set_customer_status)
    approve_change = strawberry.mutation(resolver=changes_api.approve_change)
    reject_change = strawberry.mutation(resolver=changes_api.reject_change)
    withdraw_change = strawberry.mutation(resolver=changes_api.withdraw_change)
    acknowledge_alert = strawberry.mutation(resolver=alarms_api.acknowledge_alert)
    close_alert = strawberry.mutation(resolver=alarms_api.close_alert)
    reinstate_actor = strawberry.mutation(resolver=alarms_api.reinstate_actor)
    set_alarm_rule = strawberry.mutation(resolver=alarms_api.set_alarm_rule)
    set_alarm_settings = strawberry.mutation(resolver=alarms_api.set_alarm_settings)
    export_compliance_report = strawberry.mutation(resolver=compliance_api.export_compliance_report)
    export_audit_events = strawberry.mutation(resolver=audit_api.export_audit_events)
    set_retention_rule = strawberry.mutation(resolver=retention_api.set_retention_rule)
    approve_retention_candidates = strawberry.mutation(
        resolver=retention_api.approve_retention_candidates
    )
    place_legal_hold = strawberry.mutation(resolver=retention_api.place_legal_hold)
    release_legal_hold = strawberry.mutation(resolver=retention_api.release_legal_hold)


# The endpoint parses and validates every document before it gets here (with limits and
# caches of its own, dangan.graphql.documents), so Strawberry reuses the parsed document
# and skips validating it a second time: run documents through the endpoint.
schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    execution_context_class=BulkLeafExecutor,
    extensions=[lambda: ParserCache(maxsize=1024), DisableValidation],
)
