"""The only package that touches pydicom, SimpleITK and nibabel."""
