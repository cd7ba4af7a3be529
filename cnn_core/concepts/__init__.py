"""The chapter's concepts as small pure functions for the Learn pages (no UI here).

``convolution``: 1-D/2-D true convolution and cross-correlation with padding, stride and
dilation, output sizes and an output's multiply-add terms; ``layer``: a trained conv
layer's forward pass by hand; ``pooling``; ``losses``; ``optimizers``: trajectories on 2-D
surfaces and Adam's step table; ``regularization``: dropout masks and weight histograms.
Every computation has a ``torch`` reference it is tested against.
"""
