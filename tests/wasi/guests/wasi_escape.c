/* wasi_escape.c: tries every way out of a preopened directory through the raw preview1 calls and checks
 * that each is refused. argv[1] is the preopen's guest name. The test script prepares, inside it:
 * file.txt, sub/inner.txt, out -> ../outside, abs -> /etc, loop1 <-> loop2, secretlink ->
 * ../outside/secret.txt, inlink -> sub/inner.txt, sub/upup -> ../.. ; and outside/secret.txt next to it.
 * Prints PASS/FAIL per attempt, exits 1 if any attempt was not refused (or a legal one failed). */
#include <stdio.h>
#include <string.h>
#include <wasi/api.h>

static int failures;
static __wasi_fd_t dirfd = -1;

static void expect(const char *what, __wasi_errno_t got, __wasi_errno_t want) {
    if (got == want) {
        printf("PASS %s\n", what);
    } else {
        printf("FAIL %s: errno %u, want %u\n", what, got, want);
        failures++;
    }
}

/* Escapes must fail; which errno depends on where the walk stopped, so any error passes. */
static void refused(const char *what, __wasi_errno_t got) {
    if (got != 0) {
        printf("PASS %s (errno %u)\n", what, got);
    } else {
        printf("FAIL %s: succeeded\n", what);
        failures++;
    }
}

#define R (__WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_SEEK | __WASI_RIGHTS_FD_FILESTAT_GET)
#define W (__WASI_RIGHTS_FD_WRITE | R)

static __wasi_errno_t open_at(const char *path, int follow, __wasi_oflags_t of, __wasi_rights_t rights) {
    __wasi_fd_t fd;
    __wasi_errno_t e = __wasi_path_open(dirfd, follow ? __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW : 0, path, of, rights,
                                        0, 0, &fd);
    if (!e)
        (void)__wasi_fd_close(fd);
    return e;
}

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    for (__wasi_fd_t fd = 3; fd < 64; fd++) {
        __wasi_prestat_t ps;
        char name[256];
        if (__wasi_fd_prestat_get(fd, &ps) != 0)
            break;
        if (ps.u.dir.pr_name_len < sizeof name && __wasi_fd_prestat_dir_name(fd, (uint8_t *)name, ps.u.dir.pr_name_len) == 0) {
            name[ps.u.dir.pr_name_len] = 0;
            if (!strcmp(name, argv[1]))
                dirfd = fd;
        }
    }
    if (dirfd < 0) {
        printf("FAIL no preopen named %s\n", argv[1]);
        return 1;
    }

    /* legal: these must work */
    expect("open file.txt", open_at("file.txt", 1, 0, R), 0);
    expect("open sub/../file.txt", open_at("sub/../file.txt", 1, 0, R), 0);
    expect("open inlink (symlink inside)", open_at("inlink", 1, 0, R), 0);
    expect("open . as directory", open_at(".", 1, __WASI_OFLAGS_DIRECTORY, 0), 0);

    /* escapes by path */
    expect("open ..", open_at("..", 1, __WASI_OFLAGS_DIRECTORY, 0), __WASI_ERRNO_NOTCAPABLE);
    expect("open ../outside/secret.txt", open_at("../outside/secret.txt", 1, 0, R), __WASI_ERRNO_NOTCAPABLE);
    expect("open sub/../../outside/secret.txt", open_at("sub/../../outside/secret.txt", 1, 0, R),
           __WASI_ERRNO_NOTCAPABLE);
    expect("open /etc/passwd", open_at("/etc/passwd", 1, 0, R), __WASI_ERRNO_NOTCAPABLE);
    expect("open //etc/passwd", open_at("//etc/passwd", 1, 0, R), __WASI_ERRNO_NOTCAPABLE);
    refused("open ./../../../../../../../etc/passwd", open_at("./../../../../../../../etc/passwd", 1, 0, R));

    /* escapes by symlink */
    expect("open out/secret.txt (dir symlink out)", open_at("out/secret.txt", 1, 0, R), __WASI_ERRNO_NOTCAPABLE);
    expect("open abs/passwd (absolute symlink)", open_at("abs/passwd", 1, 0, R), __WASI_ERRNO_NOTCAPABLE);
    expect("open secretlink (file symlink out)", open_at("secretlink", 1, 0, R), __WASI_ERRNO_NOTCAPABLE);
    expect("open secretlink nofollow", open_at("secretlink", 0, 0, R), __WASI_ERRNO_LOOP);
    expect("open sub/upup/outside/secret.txt", open_at("sub/upup/outside/secret.txt", 1, 0, R),
           __WASI_ERRNO_NOTCAPABLE);
    expect("open loop1 (symlink loop)", open_at("loop1", 1, 0, R), __WASI_ERRNO_LOOP);
    expect("create through out/", open_at("out/new.txt", 1, __WASI_OFLAGS_CREAT, W), __WASI_ERRNO_NOTCAPABLE);

    /* a symlink made by the guest itself */
    expect("symlink mylink -> ../outside/secret.txt", __wasi_path_symlink("../outside/secret.txt", dirfd, "mylink"), 0);
    expect("open mylink", open_at("mylink", 1, 0, R), __WASI_ERRNO_NOTCAPABLE);
    expect("symlink to an absolute path", __wasi_path_symlink("/etc/passwd", dirfd, "abslink"), __WASI_ERRNO_NOTCAPABLE);
    expect("symlink ../escape", __wasi_path_symlink("x", dirfd, "../escape"), __WASI_ERRNO_NOTCAPABLE);

    /* stat, times, directories, unlink, rename, link, readlink */
    __wasi_filestat_t st;
    expect("filestat ../outside/secret.txt",
           __wasi_path_filestat_get(dirfd, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "../outside/secret.txt", &st),
           __WASI_ERRNO_NOTCAPABLE);
    expect("filestat out/secret.txt",
           __wasi_path_filestat_get(dirfd, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "out/secret.txt", &st),
           __WASI_ERRNO_NOTCAPABLE);
    expect("filestat secretlink nofollow (the link itself)", __wasi_path_filestat_get(dirfd, 0, "secretlink", &st), 0);
    expect("set_times out/secret.txt",
           __wasi_path_filestat_set_times(dirfd, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "out/secret.txt", 0, 0,
                                          __WASI_FSTFLAGS_MTIM_NOW),
           __WASI_ERRNO_NOTCAPABLE);
    expect("set_times secretlink (follow)",
           __wasi_path_filestat_set_times(dirfd, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "secretlink", 0, 0,
                                          __WASI_FSTFLAGS_MTIM_NOW),
           __WASI_ERRNO_NOTCAPABLE);
    expect("mkdir ../newdir", __wasi_path_create_directory(dirfd, "../newdir"), __WASI_ERRNO_NOTCAPABLE);
    expect("mkdir out/newdir", __wasi_path_create_directory(dirfd, "out/newdir"), __WASI_ERRNO_NOTCAPABLE);
    expect("rmdir ../outside", __wasi_path_remove_directory(dirfd, "../outside"), __WASI_ERRNO_NOTCAPABLE);
    expect("unlink ../outside/secret.txt", __wasi_path_unlink_file(dirfd, "../outside/secret.txt"),
           __WASI_ERRNO_NOTCAPABLE);
    expect("unlink out/secret.txt", __wasi_path_unlink_file(dirfd, "out/secret.txt"), __WASI_ERRNO_NOTCAPABLE);
    expect("unlink /etc/passwd", __wasi_path_unlink_file(dirfd, "/etc/passwd"), __WASI_ERRNO_NOTCAPABLE);
    expect("rename file.txt -> ../outside/stolen.txt",
           __wasi_path_rename(dirfd, "file.txt", dirfd, "../outside/stolen.txt"), __WASI_ERRNO_NOTCAPABLE);
    expect("rename file.txt -> out/stolen.txt", __wasi_path_rename(dirfd, "file.txt", dirfd, "out/stolen.txt"),
           __WASI_ERRNO_NOTCAPABLE);
    expect("rename ../outside/secret.txt -> here.txt",
           __wasi_path_rename(dirfd, "../outside/secret.txt", dirfd, "here.txt"), __WASI_ERRNO_NOTCAPABLE);
    expect("rename out/secret.txt -> here.txt", __wasi_path_rename(dirfd, "out/secret.txt", dirfd, "here.txt"),
           __WASI_ERRNO_NOTCAPABLE);
    expect("link ../outside/secret.txt -> hard", __wasi_path_link(dirfd, 0, "../outside/secret.txt", dirfd, "hard"),
           __WASI_ERRNO_NOTCAPABLE);
    expect("link secretlink (follow) -> hard",
           __wasi_path_link(dirfd, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "secretlink", dirfd, "hard"),
           __WASI_ERRNO_NOTCAPABLE);
    char buf[64];
    __wasi_size_t n;
    expect("readlink ../outside", __wasi_path_readlink(dirfd, "../outside", (uint8_t *)buf, sizeof buf, &n),
           __WASI_ERRNO_NOTCAPABLE);
    expect("readlink out (inside, allowed)", __wasi_path_readlink(dirfd, "out", (uint8_t *)buf, sizeof buf, &n), 0);
    refused("path_open relative to stdin (not a directory)",
            __wasi_path_open(0, 0, "file.txt", 0, R, 0, 0, (__wasi_fd_t *)(void *)buf));

    /* a directory fd opened inside cannot climb out either */
    __wasi_fd_t sub;
    expect("open sub", __wasi_path_open(dirfd, 0, "sub", __WASI_OFLAGS_DIRECTORY, ~0ull, ~0ull, 0, &sub), 0);
    if (failures == 0) {
        __wasi_fd_t fd;
        expect("open ../file.txt from sub", __wasi_path_open(sub, 1, "../file.txt", 0, R, 0, 0, &fd),
               __WASI_ERRNO_NOTCAPABLE);
        expect("open inner.txt from sub", __wasi_path_open(sub, 1, "inner.txt", 0, R, 0, 0, &fd), 0);
    }
    printf("%s: %d failure(s)\n", failures ? "escape FAILED" : "escape: all refused", failures);
    return failures ? 1 : 0;
}
