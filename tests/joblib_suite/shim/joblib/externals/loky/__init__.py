"""``joblib.externals.loky``: the standalone ``loky`` that zoblib's loky backend uses."""

from loky import get_reusable_executor

__all__ = ["get_reusable_executor"]
