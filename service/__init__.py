"""xnornet's HTTP inference service: FastAPI around the C engine.

    from service.app import create_app
    from service.settings import Settings

Kept import-free so `xnornet predict` does not pay for FastAPI.
"""
