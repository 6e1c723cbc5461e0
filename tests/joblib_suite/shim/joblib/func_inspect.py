"""``joblib.func_inspect``: joblib's introspection helpers, which zoblib does not have.

zoblib's own (``zoblib.memory.keys``, ``zoblib.memory.messages``) have other signatures; binding
them here would test a different contract under joblib's names.
"""

from joblib._missing import JOBLIB_PRIVATE, MissingName

filter_args = MissingName("joblib.func_inspect.filter_args", JOBLIB_PRIVATE)
format_signature = MissingName("joblib.func_inspect.format_signature", JOBLIB_PRIVATE)
get_func_code = MissingName("joblib.func_inspect.get_func_code", JOBLIB_PRIVATE)
get_func_name = MissingName("joblib.func_inspect.get_func_name", JOBLIB_PRIVATE)
_clean_win_chars = MissingName("joblib.func_inspect._clean_win_chars", JOBLIB_PRIVATE)
