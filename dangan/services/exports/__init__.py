"""Exporting the customers a caller sees, masked as they see them, as an arq job."""

from dangan.services.exports.job import run_export
from dangan.services.exports.start import EXPORT_FIELDS, start_customer_export

__all__ = ["EXPORT_FIELDS", "run_export", "start_customer_export"]
