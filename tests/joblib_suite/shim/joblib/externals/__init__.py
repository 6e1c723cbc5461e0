"""``joblib.externals``: joblib's vendored libraries; here, the standalone ones zoblib runs on."""
