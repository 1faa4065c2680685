"""Scale runs that print figures beside peers and floors. Run: python -m benchmarks.run --help"""
