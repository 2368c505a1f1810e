"""Test support shared with other test suites: a tiny model, and HTTP servers that speak TGI's and
vLLM's documented protocols on top of hf-local (stand-ins for remote GPU servers)."""
