"""HTTP routers, one per concern; create_app mounts them."""
