"""Eddy-covariance inputs: site settings and metadata files, raw-file readers, drop folder."""
