"""The demo: a generated shop and video catalogue, realistic visitor sessions, and the pages that show them."""
