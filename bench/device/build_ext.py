"""Compile fairseq-fixed 0.12.3.1's two Cython extensions (``fairseq.data.data_utils_fast``,
``fairseq.data.token_block_utils_fast``) against the numpy 2 of the Python that runs this.

The cp312 wheel on PyPI has them compiled against numpy 1.x, which the GPU machine's numpy 2 cannot
load; overlaying numpy 1.26.4 instead breaks the image's scipy/scikit-learn (built for numpy 2), which
fairseq imports. Extensions compiled against numpy 2 headers load on any numpy 2.x. Run by
bench/device/stage.sh with a Python 3.12 that has numpy 2, Cython and setuptools:

    python bench/device/build_ext.py FAIRSEQ_SDIST.tar.gz OUT_DIR
writes OUT_DIR/data_utils_fast.cpython-312-*.so and token_block_utils_fast.cpython-312-*.so.
"""
import os
import shutil
import sys
import tarfile
import tempfile

import numpy
from Cython.Build import cythonize
from setuptools import Extension
from setuptools.dist import Distribution

sdist, out = sys.argv[1], os.path.abspath(sys.argv[2])
assert numpy.__version__.split(".")[0] == "2", f"numpy {numpy.__version__}: numpy 2 is needed"
os.makedirs(out, exist_ok=True)
with tempfile.TemporaryDirectory() as tmp:
    with tarfile.open(sdist) as tar:
        names = [m for m in tar.getmembers() if m.name.endswith(("data_utils_fast.pyx", "token_block_utils_fast.pyx"))]
        assert len(names) == 2, [m.name for m in names]
        tar.extractall(tmp, members=names, filter="data")
    src = os.path.dirname(os.path.join(tmp, names[0].name))
    # the same settings as fairseq-fixed's setup.py (NumpyExtension, C++, -std=c++11 -O3)
    exts = [Extension(f"fairseq.data.{n}", [os.path.join(src, f"{n}.pyx")], language="c++",
                      include_dirs=[numpy.get_include()], extra_compile_args=["-std=c++11", "-O3"])
            for n in ("data_utils_fast", "token_block_utils_fast")]
    dist = Distribution({"ext_modules": cythonize(exts, quiet=True, language_level=3)})
    cmd = dist.get_command_obj("build_ext")
    cmd.build_lib, cmd.build_temp = os.path.join(tmp, "lib"), os.path.join(tmp, "tmp")
    dist.run_command("build_ext")
    for path in cmd.get_outputs():
        shutil.copy(path, out)
        print(os.path.join(out, os.path.basename(path)))
