"""Benchmark scripts (run each as ``python benchmarks/NAME.py``); a package so that the tests
import the shared harness as ``benchmarks.fuzz``."""
