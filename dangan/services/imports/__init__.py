"""Importing customers from CSV or XLSX files, as an arq job (see :mod:`.job`)."""

from dangan.services.imports.job import run_import
from dangan.services.imports.start import IMPORT_MODES, start_customer_import

__all__ = ["IMPORT_MODES", "run_import", "start_customer_import"]
