"""The cashier's till in the browser: signing in and out for now; the scan field comes next."""
