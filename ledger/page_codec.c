/* The C twin of ledger/page_codec.py: write_page and read_page_row, the same rows,
 * pages and errors (tests/unit/ledger/test_page_codec.py holds both forms to that).
 *
 * A page holds at most four binary levels below its root, so a row has at most 31
 * positions (15 inline nodes and 16 below them), none longer than 81 bytes: it is built
 * in a buffer on the stack, and the recursion is at most five calls deep. The Python
 * objects made are the row, the decoded page and its entries (hash -> node), and the
 * hashes a writer must look up; child references and heights are copied from buffer to
 * buffer. The dictionaries passed in are only read; each node is held (a reference
 * taken) while the writer reads inside it.
 *
 * Built by mypyc_build.py with the mypyc modules; ledger/page_codec.py is used wherever
 * this is not built or not current (ledger/compiled.py). */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED
#include <Python.h>
#include <openssl/sha.h>
#include <string.h>

#define LEVELS 4
#define HASH_SIZE 32
#define HEIGHT_SIZE 8
#define NODE_SIZE (1 + 2 * HASH_SIZE)     /* an internal node or a leaf reference */
#define FILED_LEAF (NODE_SIZE + HEIGHT_SIZE) /* a leaf reference with its height */
#define ROW_MAX 4096                      /* > 31 positions of at most 81 bytes */
#define NODE_TAG 1
#define PAGE_TAG 2
#define LEAF_REF_TAG 3
#define EMPTY_TAG 0

static const unsigned char NO_HEIGHT[HEIGHT_SIZE] = {0xff, 0xff, 0xff, 0xff,
                                                     0xff, 0xff, 0xff, 0xff};
static const unsigned char ZERO_HASH[HASH_SIZE] = {0}; /* the hash of every empty subtree */

static PyObject *corruption_error; /* ledger.errors.CorruptionError */

static void
sha256(const unsigned char *data, size_t len, unsigned char *out)
{
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, data, len);
    SHA256_Final(out, &ctx);
}

/* CorruptionError(f"{before}{node_hash.hex()}{after}") */
static void
corrupt_node(const char *before, PyObject *node_hash, const char *after)
{
    PyObject *hex = PyObject_CallMethod(node_hash, "hex", NULL);
    if (hex != NULL) {
        PyErr_Format(corruption_error, "%s%U%s", before, hex, after);
        Py_DECREF(hex);
    }
}

/* --- writing ------------------------------------------------------------------------ */

typedef struct {
    PyObject *nodes;  /* dict: hash -> node */
    PyObject *old;    /* dict: the page replaced, looked in first */
    PyObject *page;   /* dict being filled, or NULL when not decoded */
    int stored;
    Py_ssize_t len;
    unsigned char row[ROW_MAX];
} Writer;

static int
put(Writer *w, const void *data, Py_ssize_t n)
{
    if (w->len + n > ROW_MAX) { /* cannot happen with at most 31 positions */
        PyErr_SetString(PyExc_SystemError, "page row overflow");
        return -1;
    }
    memcpy(w->row + w->len, data, (size_t)n);
    w->len += n;
    return 0;
}

static int
put_tagged(Writer *w, unsigned char tag, const void *a, Py_ssize_t an, const void *b,
           Py_ssize_t bn)
{
    if (put(w, &tag, 1) < 0 || put(w, a, an) < 0)
        return -1;
    return bn ? put(w, b, bn) : 0;
}

static PyObject *
lookup(Writer *w, PyObject *node_hash)
{
    PyObject *node = PyDict_GetItemWithError(w->old, node_hash); /* borrowed */
    if (node == NULL && !PyErr_Occurred())
        node = PyDict_GetItemWithError(w->nodes, node_hash);
    if (node != NULL && !PyBytes_Check(node)) {
        PyErr_SetString(PyExc_TypeError, "a page's nodes are bytes");
        return NULL;
    }
    return node;
}

/* The position of the node whose hash is the 32 bytes at ``h`` (``hash_obj`` the same
 * as a bytes object, or NULL: made when it must be looked up), ``rel`` levels below the
 * page's root; ``at`` (``at_len`` bytes) where its parent says it is filed. */
static int
write_node(Writer *w, PyObject *hash_obj, const unsigned char *h, int rel,
           const unsigned char *at, Py_ssize_t at_len)
{
    static const unsigned char empty_tag = EMPTY_TAG;
    PyObject *node_hash = hash_obj, *node;
    const unsigned char *n;
    Py_ssize_t nl;
    int rc = -1;

    if (memcmp(h, ZERO_HASH, HASH_SIZE) == 0)
        return put(w, &empty_tag, 1);
    if (rel == LEVELS && w->stored && at_len == HEIGHT_SIZE &&
        memcmp(at, NO_HEIGHT, HEIGHT_SIZE) != 0)
        return put_tagged(w, PAGE_TAG, at, HEIGHT_SIZE, h, HASH_SIZE); /* a child page */
    if (node_hash == NULL) {
        node_hash = PyBytes_FromStringAndSize((const char *)h, HASH_SIZE);
        if (node_hash == NULL)
            return -1;
    } else {
        Py_INCREF(node_hash);
    }
    node = lookup(w, node_hash);
    if (node == NULL && PyErr_Occurred())
        goto done;
    Py_XINCREF(node); /* held while the descent reads inside it */
    n = node ? (const unsigned char *)PyBytes_AS_STRING(node) : NULL;
    nl = node ? PyBytes_GET_SIZE(node) : 0;
    if (nl > 0 && n[0] == LEAF_REF_TAG) {
        if (!w->stored) {
            if (put(w, n, nl < NODE_SIZE ? nl : NODE_SIZE) < 0)
                goto done;
        } else if (nl == FILED_LEAF) {
            if (put(w, n, nl) < 0) /* its encoding is its reference form */
                goto done;
        } else {
            corrupt_node("state leaf ", node_hash, " of a new page is not filed");
            goto done;
        }
    } else if (rel == LEVELS) {
        if (w->stored)
            corrupt_node("state page ", node_hash, " of a new page is not filed");
        else
            rc = put_tagged(w, PAGE_TAG, h, HASH_SIZE, NULL, 0);
        goto done; /* a child page is no entry of this one */
    } else if (nl < NODE_SIZE || n[0] != NODE_TAG) {
        corrupt_node("state node ", node_hash, " of a new page is unknown");
        goto done;
    } else {
        /* node[1:33], node[33:65]; where each is filed: node[65:73], node[73:81] */
        Py_ssize_t left_at = nl - 65 < 0 ? 0 : (nl - 65 > 8 ? 8 : nl - 65);
        Py_ssize_t right_at = nl - 73 < 0 ? 0 : (nl - 73 > 8 ? 8 : nl - 73);
        static const unsigned char inline_tag = NODE_TAG;
        if (put(w, &inline_tag, 1) < 0 ||
            write_node(w, NULL, n + 1, rel + 1, n + 65, left_at) < 0 ||
            write_node(w, NULL, n + 33, rel + 1, n + 73, right_at) < 0)
            goto done;
    }
    if (w->page != NULL && PyDict_SetItem(w->page, node_hash, node) < 0)
        goto done;
    rc = 0;
done:
    Py_XDECREF(node);
    Py_DECREF(node_hash);
    return rc;
}

static PyObject *
write_page(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *root, *row = NULL, *page, *out = NULL;
    Writer w; /* on the stack: a row is at most ROW_MAX bytes */
    int decoded, stored;

    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "write_page(root, nodes, old, decoded, stored)");
        return NULL;
    }
    root = args[0];
    if (!PyBytes_Check(root) || PyBytes_GET_SIZE(root) != HASH_SIZE || !PyDict_Check(args[1]) ||
        !PyDict_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "write_page: a 32-byte root and two dicts");
        return NULL;
    }
    decoded = PyObject_IsTrue(args[3]);
    stored = PyObject_IsTrue(args[4]);
    if (decoded < 0 || stored < 0)
        return NULL;
    page = PyDict_New(); /* left empty unless decoded, as the pure form returns it */
    if (page == NULL)
        return NULL;
    w.nodes = args[1];
    w.old = args[2];
    w.page = decoded ? page : NULL;
    w.stored = stored;
    w.len = 0;
    w.row[w.len++] = PAGE_TAG;
    if (write_node(&w, root, (const unsigned char *)PyBytes_AS_STRING(root), 0,
                   (const unsigned char *)"", 0) == 0) {
        row = PyBytes_FromStringAndSize((const char *)w.row, w.len);
        if (row != NULL)
            out = PyTuple_Pack(2, row, page);
    }
    Py_XDECREF(row);
    Py_DECREF(page);
    return out;
}

/* --- reading ------------------------------------------------------------------------ */

typedef struct {
    const unsigned char *row;
    Py_ssize_t pos, end;
    int stored;
    const unsigned char *at; /* the height given to a wire row's references, or NULL */
    PyObject *name;          /* str, or a hash (bytes): what a malformed row is called */
    PyObject *page;
    const unsigned char *child_at; /* where the child page just read is filed */
} Reader;

static int
malformed(Reader *r)
{
    PyObject *name = r->name;
    if (PyBytes_Check(name)) { /* a hash: named by its hex, made only now */
        name = PyObject_CallMethod(name, "hex", NULL);
        if (name == NULL)
            return -1;
    } else {
        Py_INCREF(name);
    }
    PyErr_Format(corruption_error, "state page %U is malformed", name);
    Py_DECREF(name);
    return -1;
}

/* Enter ``node`` (a new reference, stolen) under its hash ``digest`` into the page. */
static int
enter(Reader *r, const unsigned char *digest, PyObject *node)
{
    PyObject *key;
    int rc;
    if (node == NULL)
        return -1;
    key = PyBytes_FromStringAndSize((const char *)digest, HASH_SIZE);
    rc = key == NULL ? -1 : PyDict_SetItem(r->page, key, node);
    Py_XDECREF(key);
    Py_DECREF(node);
    return rc;
}

/* The hash of the node at the current position (into ``out``), ``rel`` levels below
 * the page's root; its inline nodes and leaves join the page. */
static int
read_node(Reader *r, int rel, unsigned char *out)
{
    const unsigned char *row = r->row;
    Py_ssize_t pos = r->pos;
    int tag = pos < r->end ? row[pos] : -1;
    pos += 1;
    if (tag == NODE_TAG && rel < LEVELS) {
        unsigned char node[NODE_SIZE + 2 * HEIGHT_SIZE];
        const unsigned char *left_at;
        Py_ssize_t size = NODE_SIZE;
        r->pos = pos;
        node[0] = NODE_TAG;
        if (read_node(r, rel + 1, node + 1) < 0)
            return -1;
        left_at = r->child_at;
        if (read_node(r, rel + 1, node + 1 + HASH_SIZE) < 0)
            return -1;
        sha256(node, NODE_SIZE, out);
        if (rel == LEVELS - 1 && (r->stored || r->at != NULL)) {
            memcpy(node + NODE_SIZE, left_at, HEIGHT_SIZE);
            memcpy(node + NODE_SIZE + HEIGHT_SIZE, r->child_at, HEIGHT_SIZE);
            size += 2 * HEIGHT_SIZE;
        }
        r->child_at = NO_HEIGHT;
        return enter(r, out, PyBytes_FromStringAndSize((const char *)node, size));
    }
    r->child_at = NO_HEIGHT;
    if (tag == LEAF_REF_TAG) {
        Py_ssize_t end = pos + 2 * HASH_SIZE + (r->stored ? HEIGHT_SIZE : 0);
        if (end <= r->end) {
            const unsigned char *ref = row + pos - 1; /* its encoding is its reference form */
            Py_ssize_t ref_len = end - (pos - 1);
            unsigned char leaf[NODE_SIZE];
            PyObject *value;
            r->pos = end;
            leaf[0] = 0x00;
            memcpy(leaf + 1, ref + 1, NODE_SIZE - 1);
            sha256(leaf, NODE_SIZE, out);
            if (r->at != NULL) {
                value = PyBytes_FromStringAndSize(NULL, ref_len + HEIGHT_SIZE);
                if (value != NULL) {
                    memcpy(PyBytes_AS_STRING(value), ref, (size_t)ref_len);
                    memcpy(PyBytes_AS_STRING(value) + ref_len, r->at, HEIGHT_SIZE);
                }
            } else {
                value = PyBytes_FromStringAndSize((const char *)ref, ref_len);
            }
            return enter(r, out, value);
        }
    } else if (tag == EMPTY_TAG) {
        r->pos = pos;
        memset(out, 0, HASH_SIZE);
        return 0;
    } else if (tag == PAGE_TAG && rel == LEVELS) {
        const unsigned char *at = r->at; /* NULL: a wire row read without heights */
        if (r->stored) {
            at = row + pos;
            pos += HEIGHT_SIZE;
        }
        if (pos + HASH_SIZE <= r->end) {
            const unsigned char *child = row + pos;
            r->pos = pos + HASH_SIZE;
            if (memcmp(child, ZERO_HASH, HASH_SIZE) != 0 &&
                (!r->stored || memcmp(at, NO_HEIGHT, HEIGHT_SIZE) != 0)) {
                r->child_at = at != NULL ? at : (const unsigned char *)"";
                memcpy(out, child, HASH_SIZE);
                return 0;
            }
        }
    }
    return malformed(r);
}

static PyObject *
read_page_row(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *row_obj, *root = NULL, *out = NULL;
    Reader r;
    unsigned char digest[HASH_SIZE];
    int stored;

    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "read_page_row(row, name, stored, at)");
        return NULL;
    }
    row_obj = args[0];
    if (!PyBytes_Check(row_obj) || !(PyUnicode_Check(args[1]) || PyBytes_Check(args[1])) ||
        !PyBytes_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "read_page_row: bytes, str or bytes, bool, bytes");
        return NULL;
    }
    stored = PyObject_IsTrue(args[2]);
    if (stored < 0)
        return NULL;
    if (PyBytes_GET_SIZE(args[3]) != 0 && PyBytes_GET_SIZE(args[3]) != HEIGHT_SIZE) {
        PyErr_SetString(PyExc_ValueError, "read_page_row: a height is 8 bytes");
        return NULL;
    }
    r.row = (const unsigned char *)PyBytes_AS_STRING(row_obj);
    r.end = PyBytes_GET_SIZE(row_obj);
    r.pos = 1;
    r.stored = stored;
    r.at = PyBytes_GET_SIZE(args[3]) ? (const unsigned char *)PyBytes_AS_STRING(args[3]) : NULL;
    r.name = args[1];
    r.child_at = NO_HEIGHT;
    if (r.end < 2 || r.row[0] != PAGE_TAG || r.row[1] != NODE_TAG) {
        malformed(&r);
        return NULL;
    }
    r.page = PyDict_New();
    if (r.page == NULL)
        return NULL;
    if (read_node(&r, 0, digest) < 0)
        goto done;
    if (r.pos != r.end) {
        malformed(&r);
        goto done;
    }
    root = PyBytes_FromStringAndSize((const char *)digest, HASH_SIZE);
    if (root != NULL)
        out = PyTuple_Pack(2, root, r.page);
done:
    Py_XDECREF(root);
    Py_DECREF(r.page);
    return out;
}

static PyMethodDef methods[] = {
    {"write_page", (PyCFunction)(void (*)(void))write_page, METH_FASTCALL,
     "(row, decoded page) of the page whose root is root (ledger/page_codec.py)."},
    {"read_page_row", (PyCFunction)(void (*)(void))read_page_row, METH_FASTCALL,
     "(root hash, decoded page) of a page row (ledger/page_codec.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ledger.page_codec",
    "State pages written and read (C twin of ledger/page_codec.py).", -1, methods,
};

PyMODINIT_FUNC
PyInit_page_codec(void)
{
    PyObject *errors, *m;
    errors = PyImport_ImportModule("ledger.errors");
    if (errors == NULL)
        return NULL;
    corruption_error = PyObject_GetAttrString(errors, "CorruptionError");
    Py_DECREF(errors);
    if (corruption_error == NULL)
        return NULL;
    m = PyModule_Create(&module);
    return m;
}
