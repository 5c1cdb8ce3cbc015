/* wasi_fdops.c: the fd_* and path_* calls wasi-libc's common paths leave out, through the raw preview1
 * API: fd_renumber, fd_fdstat_set_flags/_set_rights, fd_advise, fd_allocate, fd_sync/_datasync, fd_tell,
 * fd_close, path_link, path_readlink truncation, fd_prestat_*, and rights enforcement.
 * argv[1] is the guest name of an (empty) preopened directory. */
#include <stdio.h>
#include <string.h>
#include <wasi/api.h>

/* Dropped from wasi-libc's header but still part of preview1. */
__attribute__((import_module("wasi_snapshot_preview1"), import_name("proc_raise"))) int32_t raw_proc_raise(int32_t sig);

static int failures;
static void expect(const char *what, __wasi_errno_t got, __wasi_errno_t want) {
    if (got == want) {
        printf("PASS %s\n", what);
    } else {
        printf("FAIL %s: errno %u, want %u\n", what, got, want);
        failures++;
    }
}
static void truth(const char *what, int ok) { expect(what, ok ? 0 : 1, 0); }

#define ALL_FILE                                                                                            \
    (__WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_SEEK | __WASI_RIGHTS_FD_TELL |         \
     __WASI_RIGHTS_FD_FDSTAT_SET_FLAGS | __WASI_RIGHTS_FD_SYNC | __WASI_RIGHTS_FD_DATASYNC |                   \
     __WASI_RIGHTS_FD_ADVISE | __WASI_RIGHTS_FD_ALLOCATE | __WASI_RIGHTS_FD_FILESTAT_GET |                     \
     __WASI_RIGHTS_FD_FILESTAT_SET_SIZE)

static __wasi_size_t put(__wasi_fd_t fd, const char *s) {
    __wasi_ciovec_t iov = {.buf = (const uint8_t *)s, .buf_len = strlen(s)};
    __wasi_size_t n = 0;
    return __wasi_fd_write(fd, &iov, 1, &n) ? 0 : n;
}

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    __wasi_fd_t dir = -1;
    for (__wasi_fd_t fd = 3; fd < 16; fd++) {
        __wasi_prestat_t ps;
        char name[128];
        if (__wasi_fd_prestat_get(fd, &ps) != 0)
            break;
        truth("prestat tag is dir", ps.tag == __WASI_PREOPENTYPE_DIR);
        if (ps.u.dir.pr_name_len < sizeof name &&
            __wasi_fd_prestat_dir_name(fd, (uint8_t *)name, ps.u.dir.pr_name_len) == 0) {
            name[ps.u.dir.pr_name_len] = 0;
            if (!strcmp(name, argv[1]))
                dir = fd;
        }
    }
    if (dir < 0) {
        printf("FAIL no preopen %s\n", argv[1]);
        return 1;
    }
    char small[2];
    expect("prestat_dir_name into a short buffer", __wasi_fd_prestat_dir_name(dir, (uint8_t *)small, 1),
           strlen(argv[1]) > 1 ? __WASI_ERRNO_NAMETOOLONG : 0);
    __wasi_prestat_t ps;
    expect("prestat_get on stdout", __wasi_fd_prestat_get(1, &ps), __WASI_ERRNO_BADF);

    __wasi_fdstat_t st;
    expect("fdstat of the preopen", __wasi_fd_fdstat_get(dir, &st), 0);
    truth("preopen is a directory with path_open", st.fs_filetype == __WASI_FILETYPE_DIRECTORY &&
                                                         (st.fs_rights_base & __WASI_RIGHTS_PATH_OPEN));

    __wasi_fd_t a, b;
    expect("create a.txt", __wasi_path_open(dir, 0, "a.txt", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC, ALL_FILE, 0, 0, &a), 0);
    truth("write 10 bytes", put(a, "0123456789") == 10);
    __wasi_filesize_t pos;
    expect("tell", __wasi_fd_tell(a, &pos), 0);
    truth("tell is 10", pos == 10);
    expect("advise sequential", __wasi_fd_advise(a, 0, 10, __WASI_ADVICE_SEQUENTIAL), 0);
    expect("advise bad value", __wasi_fd_advise(a, 0, 10, 77), __WASI_ERRNO_INVAL);
    expect("allocate 4096", __wasi_fd_allocate(a, 0, 4096), 0);
    __wasi_filestat_t fs;
    expect("filestat", __wasi_fd_filestat_get(a, &fs), 0);
    truth("allocate grew the file to 4096", fs.size == 4096 && fs.filetype == __WASI_FILETYPE_REGULAR_FILE);
    expect("set_size 10", __wasi_fd_filestat_set_size(a, 10), 0);
    expect("sync", __wasi_fd_sync(a), 0);
    expect("datasync", __wasi_fd_datasync(a), 0);

    /* append on, then off */
    expect("set_flags append", __wasi_fd_fdstat_set_flags(a, __WASI_FDFLAGS_APPEND), 0);
    expect("fdstat", __wasi_fd_fdstat_get(a, &st), 0);
    truth("append flag reported", st.fs_flags == __WASI_FDFLAGS_APPEND);
    expect("seek to 0", __wasi_fd_seek(a, 0, __WASI_WHENCE_SET, &pos), 0);
    truth("append writes at the end", put(a, "AB") == 2);
    expect("filestat", __wasi_fd_filestat_get(a, &fs), 0);
    truth("size 12 after append", fs.size == 12);
    expect("set_flags none", __wasi_fd_fdstat_set_flags(a, 0), 0);
    expect("seek to 0", __wasi_fd_seek(a, 0, __WASI_WHENCE_SET, &pos), 0);
    truth("write at 0", put(a, "xy") == 2);
    char buf[32] = {0};
    __wasi_iovec_t iov = {.buf = (uint8_t *)buf, .buf_len = sizeof buf - 1};
    __wasi_size_t n;
    expect("pread", __wasi_fd_pread(a, &iov, 1, 0, &n), 0);
    truth("content xy23456789AB", n == 12 && !memcmp(buf, "xy23456789AB", 12));
    expect("set_flags sync", __wasi_fd_fdstat_set_flags(a, __WASI_FDFLAGS_SYNC), __WASI_ERRNO_NOTSUP);
    expect("seek with a bad whence", __wasi_fd_seek(a, 0, 9, &pos), __WASI_ERRNO_INVAL);
    expect("seek before the start", __wasi_fd_seek(a, -100, __WASI_WHENCE_SET, &pos), __WASI_ERRNO_INVAL);
    expect("seek from the end", __wasi_fd_seek(a, -2, __WASI_WHENCE_END, &pos), 0);
    truth("at 10", pos == 10);

    /* rights only shrink, and are enforced */
    expect("open a.txt read-only", __wasi_path_open(dir, 0, "a.txt", 0, __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_SEEK, 0, 0, &b), 0);
    __wasi_ciovec_t ciov = {.buf = (const uint8_t *)"no", .buf_len = 2};
    expect("fd_write needs FD_WRITE", __wasi_fd_write(b, &ciov, 1, &n), __WASI_ERRNO_NOTCAPABLE);
    expect("set_size needs its right", __wasi_fd_filestat_set_size(b, 0), __WASI_ERRNO_NOTCAPABLE);
    expect("set_rights cannot grow", __wasi_fd_fdstat_set_rights(b, ALL_FILE, 0), __WASI_ERRNO_NOTCAPABLE);
    expect("set_rights drops seek", __wasi_fd_fdstat_set_rights(b, __WASI_RIGHTS_FD_READ, 0), 0);
    expect("seek now refused", __wasi_fd_seek(b, 1, __WASI_WHENCE_SET, &pos), __WASI_ERRNO_NOTCAPABLE);
    expect("read still allowed", __wasi_fd_read(b, &iov, 1, &n), 0);

    /* renumber b onto a: a's file is closed, b's moves, b is free */
    expect("renumber", __wasi_fd_renumber(b, a), 0);
    expect("old number is closed", __wasi_fd_close(b), __WASI_ERRNO_BADF);
    expect("renumbered fd keeps its rights", __wasi_fd_write(a, &ciov, 1, &n), __WASI_ERRNO_NOTCAPABLE);
    expect("renumber from a closed fd", __wasi_fd_renumber(b, a), __WASI_ERRNO_BADF);
    expect("renumber onto a closed fd", __wasi_fd_renumber(a, 999), __WASI_ERRNO_BADF);
    expect("close", __wasi_fd_close(a), 0);
    expect("close twice", __wasi_fd_close(a), __WASI_ERRNO_BADF);

    /* hard links and readlink truncation */
    expect("link a.txt -> b.txt", __wasi_path_link(dir, 0, "a.txt", dir, "b.txt"), 0);
    expect("stat b.txt", __wasi_path_filestat_get(dir, 0, "b.txt", &fs), 0);
    truth("two links", fs.nlink == 2 && fs.size == 12);
    expect("link onto an existing name", __wasi_path_link(dir, 0, "a.txt", dir, "b.txt"), __WASI_ERRNO_EXIST);
    expect("symlink", __wasi_path_symlink("a-rather-long-target", dir, "sl"), 0);
    expect("link sl (follow) -> c.txt", __wasi_path_link(dir, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "sl", dir, "c.txt"),
           __WASI_ERRNO_NOENT);
    expect("symlink sl2 -> a.txt", __wasi_path_symlink("a.txt", dir, "sl2"), 0);
    expect("link sl2 (follow) -> c.txt", __wasi_path_link(dir, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "sl2", dir, "c.txt"), 0);
    expect("stat c.txt", __wasi_path_filestat_get(dir, 0, "c.txt", &fs), 0);
    truth("c.txt is the file, three links", fs.nlink == 3 && fs.filetype == __WASI_FILETYPE_REGULAR_FILE);
    expect("readlink into 4 bytes", __wasi_path_readlink(dir, "sl", (uint8_t *)buf, 4, &n), 0);
    truth("truncated to 4", n == 4 && !memcmp(buf, "a-ra", 4));
    expect("readlink of a file", __wasi_path_readlink(dir, "a.txt", (uint8_t *)buf, 4, &n), __WASI_ERRNO_INVAL);
    expect("stat sl nofollow", __wasi_path_filestat_get(dir, 0, "sl", &fs), 0);
    truth("is a symlink of 20 bytes", fs.filetype == __WASI_FILETYPE_SYMBOLIC_LINK && fs.size == 20);
    expect("unlink a directory", __wasi_path_create_directory(dir, "dd"), 0);
    expect("unlink_file on a directory", __wasi_path_unlink_file(dir, "dd"), __WASI_ERRNO_ISDIR);
    expect("unlink_file with a trailing slash", __wasi_path_unlink_file(dir, "a.txt/"), __WASI_ERRNO_NOTDIR);
    expect("rmdir a file", __wasi_path_remove_directory(dir, "a.txt"), __WASI_ERRNO_NOTDIR);
    expect("rmdir dd/", __wasi_path_remove_directory(dir, "dd/"), 0);
    expect("mkdir .", __wasi_path_create_directory(dir, "."), __WASI_ERRNO_EXIST);
    expect("rename a file onto a/ (trailing slash)", __wasi_path_rename(dir, "a.txt/", dir, "z"), __WASI_ERRNO_NOTDIR);
    const char *names[] = {"a.txt", "b.txt", "c.txt", "sl", "sl2"};
    for (int i = 0; i < 5; i++)
        expect(names[i], __wasi_path_unlink_file(dir, names[i]), 0);

    /* stdio */
    expect("fdstat stdout", __wasi_fd_fdstat_get(1, &st), 0);
    expect("fd 99 is closed", __wasi_fd_fdstat_get(99, &st), __WASI_ERRNO_BADF);
    expect("negative fd", __wasi_fd_close(-5), __WASI_ERRNO_BADF);
    expect("sched_yield", __wasi_sched_yield(), 0);
    expect("proc_raise is not provided", (__wasi_errno_t)raw_proc_raise(6), __WASI_ERRNO_NOSYS);
    expect("sock_shutdown is not provided", __wasi_sock_shutdown(1, __WASI_SDFLAGS_RD), __WASI_ERRNO_NOSYS);

    printf("%s: %d failure(s)\n", failures ? "fdops FAILED" : "fdops: all ok", failures);
    return failures ? 1 : 0;
}
