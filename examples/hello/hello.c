/* hello.c: a hello-world WASI command for Shoal.
 *   shoal run build/guests/hello.wasm            -> Hello, world! (from a Shoal guest)
 *   shoal run build/guests/hello.wasm Ada Grace  -> Hello, Ada and Grace! (from a Shoal guest) */
#include <stdio.h>

int main(int argc, char **argv) {
    printf("Hello, ");
    if (argc < 2)
        printf("world");
    for (int i = 1; i < argc; i++)
        printf("%s%s", argv[i], i + 2 < argc ? ", " : i + 1 < argc ? " and " : "");
    printf("! (from a Shoal guest)\n");
    return 0;
}
