"""Access alarms (报警机制, issue 6 item 5): rules evaluated over the audit trail.

Every GraphQL request leaves an event in its tenant's hash-chained ``audit_event``
table (:mod:`dangan.audit`). An arq job on a queue of its own tails each tenant's chain
from a cursor (``alarm_cursor``), feeds sliding windows in Redis (:mod:`.windows`) and
opens alerts (:mod:`.evaluate`), one per rule and actor while it is not closed. The
request path only asks, at most once per ``alarm_delay_seconds`` and after the response
has gone out, for that evaluation (:mod:`.signal`); a cron sweep every minute catches
what a lost signal missed. New alerts are POSTed to the tenant's webhook, signed
(:mod:`.webhook`); a rule may suspend the actor's credential until an administrator
reinstates it (:mod:`.suspension`).
"""
