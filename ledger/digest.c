/* The C twin of ledger/digest.py: sha256_digest(data) -> the 32-byte SHA-256 digest.
 *
 * OpenSSL's SHA256_Init/Update/Final run the SHA-256 implementation directly (SHA-NI
 * where the CPU has it); hashlib and OpenSSL 3's one-shot SHA256() fetch the algorithm
 * by name on every call first, which costs more than hashing 65 bytes. The low-level
 * functions are deprecated in OpenSSL 3 but kept. What is hashed here is public (ledger
 * rows, transactions), so the context is not wiped after use.
 *
 * Built by mypyc_build.py with the mypyc modules; ledger/digest.py is used wherever this
 * is not built or not current (ledger/compiled.py). */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED
#include <Python.h>
#include <openssl/sha.h>

static PyObject *
sha256_digest(PyObject *module, PyObject *data)
{
    Py_buffer view;
    SHA256_CTX ctx;
    PyObject *out;

    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
        return NULL; /* TypeError: a bytes-like object is required */
    out = PyBytes_FromStringAndSize(NULL, SHA256_DIGEST_LENGTH);
    if (out != NULL) {
        SHA256_Init(&ctx);
        SHA256_Update(&ctx, view.buf, (size_t)view.len);
        SHA256_Final((unsigned char *)PyBytes_AS_STRING(out), &ctx);
    }
    PyBuffer_Release(&view);
    return out;
}

static PyMethodDef methods[] = {
    {"sha256_digest", sha256_digest, METH_O, "The 32-byte SHA-256 digest of data."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ledger.digest", "SHA-256 (C twin of ledger/digest.py).", -1,
    methods,
};

PyMODINIT_FUNC
PyInit_digest(void)
{
    return PyModule_Create(&module);
}
