"""GraphQL documents the authorization tests send."""

from __future__ import annotations

from tests.authz.model import SELECTION

LIST_EDGES = f"""
query($first: Int!, $after: String, $where: [CustomerCondition!], $search: String,
      $order: CustomerOrder) {{
  customers(first: $first, after: $after, where: $where, search: $search, orderBy: $order) {{
    totalCount
    edges {{ cursor node {{ id {SELECTION} owner {{ id email }} department {{ id }} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}"""

LIST_NODES = f"""
query($first: Int!, $where: [CustomerCondition!]) {{
  customers(first: $first, where: $where) {{
    totalCount
    nodes {{ ...all }}
  }}
}}
fragment all on Customer {{ id {SELECTION} owner {{ id }} }}"""

# One or two fields of each class, through an inline fragment (a lighter query: with
# every field the SQL of a member of staff is big, see test_decisions.py).
SOME_FIELDS = ("name", "phone", "wechat", "idNumber", "gender", "annualRevenue", "remarks")
LIST_NODES_SOME = f"""
query($first: Int!) {{
  customers(first: $first) {{
    totalCount
    nodes {{ ... on Customer {{ id {" ".join(SOME_FIELDS)} owner {{ id }} }} }}
  }}
}}"""

IDS = """
query($first: Int!, $after: String, $where: [CustomerCondition!], $search: String,
      $order: CustomerOrder) {
  customers(first: $first, after: $after, where: $where, search: $search, orderBy: $order) {
    totalCount
    nodes { id }
    pageInfo { hasNextPage endCursor }
  }
}"""

DETAIL = f"""
query($id: ID!) {{
  customer(id: $id) {{ id {SELECTION} owner {{ id displayName }} department {{ id name }} }}
}}"""

DETAIL_NAME = "query($id: ID!) { customer(id: $id) { id name phone } }"

UPDATE = f"""
mutation($id: ID!, $version: Int!, $input: UpdateCustomerInput!) {{
  updateCustomer(id: $id, version: $version, input: $input) {{ id {SELECTION} }}
}}"""

CREATE = f"""
mutation($input: CreateCustomerInput!, $allowPossibleDuplicate: Boolean = false) {{
  createCustomer(input: $input, allowPossibleDuplicate: $allowPossibleDuplicate) {{
    id {SELECTION}
  }}
}}"""
