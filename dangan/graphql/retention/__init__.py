"""Retention purges in the API (定期清理, 销毁须登记)."""
