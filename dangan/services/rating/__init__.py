"""Customer rating (客户评级): scores in SQL, the criteria, and reads per caller.

Public API for other features: :func:`rate_customers` (inside the current tenant
transaction, e.g. after a change to a customer's purchases or assessment, with trigger
``change``) and :func:`rate_all_customers` (a whole tenant, in batches).
"""

from dangan.services.rating.criteria import (
    Criteria,
    current_criteria,
    rating_criteria,
    set_rating_criteria,
)
from dangan.services.rating.scoring import (
    CRITERIA,
    Trigger,
    rate_all_customers,
    rate_customers,
    rerate_if_affected,
)
from dangan.services.rating.views import (
    HIDDEN,
    CriterionView,
    RatingView,
    latest_ratings,
    rating_history,
    recompute_rating,
)

__all__ = [
    "CRITERIA",
    "HIDDEN",
    "Criteria",
    "CriterionView",
    "RatingView",
    "Trigger",
    "current_criteria",
    "latest_ratings",
    "rate_all_customers",
    "rate_customers",
    "rating_criteria",
    "rating_history",
    "recompute_rating",
    "rerate_if_affected",
    "set_rating_criteria",
]
