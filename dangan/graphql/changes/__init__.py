"""Change history and approvals (修改须审批并记录)."""
