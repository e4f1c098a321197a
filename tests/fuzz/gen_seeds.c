/*
 * Writes a seed corpus for fuzz_image: valid images of several shapes
 * (built by the unit tests' image helper) and a few damaged ones.
 * Usage: gen_seeds DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/img_build.h"

static void put(const char *dir, const char *name, unsigned opts)
{
	char path[4096];
	size_t len;
	void *img = ti_build(opts, &len);

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ti_write_file(path, img, len);
	free(img);
}

int main(int argc, char **argv)
{
	const unsigned all_meta = TI_OMIT_INV | TI_OMIT_PROC | TI_OMIT_MM | TI_OMIT_FILES;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	put(argv[1], "standard", 0);
	put(argv[1], "small-optional", TI_SMALL | TI_OPTIONAL_REC);
	put(argv[1], "meta-only", TI_OMIT_PAGES);
	put(argv[1], "meta-optional", TI_OMIT_PAGES | TI_OPTIONAL_REC);
	put(argv[1], "pages-only", all_meta | TI_SMALL);
	put(argv[1], "empty", all_meta | TI_OMIT_PAGES);
	put(argv[1], "no-end", TI_OMIT_PAGES | TI_NO_END);
	put(argv[1], "dup-inventory", TI_OMIT_PAGES | TI_DUP_INV);
	return 0;
}
