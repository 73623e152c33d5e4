"""Build hook: compiles the C engine through cffi (engine/_build.py) during `pip install`."""

from setuptools import setup

setup(cffi_modules=["engine/_build.py:ffibuilder"])
