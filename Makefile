# rtcr: one plain GNU make build.
#   make              -> build/rtcr, unit tests, test targets, bench helpers
#   make SAN=1        -> build-san/ with AddressSanitizer + UBSan (hosted code)
#   make check        -> run the whole test suite (scripts/test.sh does the same with deps)

SAN      ?= 0
ifeq ($(SAN),1)
BUILD    ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD    ?= build
SANFLAGS :=
endif

CC       ?= gcc
PROTOC_C ?= protoc-c
WERROR   ?= -Werror
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra $(WERROR) -Wno-unused-parameter -Wshadow -Wformat=2 \
            -fno-strict-aliasing $(SANFLAGS)
CPPFLAGS += -D_GNU_SOURCE -Isrc -I$(BUILD)/proto
LDFLAGS  += $(SANFLAGS)
LDLIBS   := -lprotobuf-c -lxxhash -ljson-c -lpthread

PROTOS   := $(wildcard proto/*.proto)
PB_C     := $(patsubst proto/%.proto,$(BUILD)/proto/%.pb-c.c,$(PROTOS))
PB_H     := $(PB_C:.c=.h)

SRC      := $(filter-out src/main.c,$(wildcard src/*/*.c src/arch/*/*.c)) 
ASM      := $(wildcard src/arch/*/*.S)
OBJ      := $(patsubst %.c,$(BUILD)/%.o,$(SRC)) $(patsubst %.S,$(BUILD)/%.o,$(ASM)) \
            $(patsubst %.c,%.o,$(PB_C))
LIB      := $(BUILD)/librtcr.a

UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRC))

# Test targets are built twice: glibc-dynamic and static. They are the
# programs rtcr checkpoints; they never link rtcr code.
TGT_SRC  := $(wildcard tests/targets/*.c)
TGT_BIN  := $(patsubst tests/targets/%.c,$(BUILD)/targets/%,$(TGT_SRC)) \
            $(patsubst tests/targets/%.c,$(BUILD)/targets/%-static,$(TGT_SRC))
TGT_CFLAGS := -O1 -g -std=gnu11 -Wall -D_GNU_SOURCE -Itests/targets

BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

.PHONY: all clean check unit
.SECONDARY: $(PB_C) $(PB_H)
all: $(BUILD)/rtcr $(UNIT_BIN) $(TGT_BIN) $(BENCH_BIN)

$(BUILD)/proto/%.pb-c.c $(BUILD)/proto/%.pb-c.h: proto/%.proto
	@mkdir -p $(dir $@)
	$(PROTOC_C) --proto_path=proto --c_out=$(BUILD)/proto $<

$(BUILD)/proto/%.pb-c.o: $(BUILD)/proto/%.pb-c.c
	$(CC) $(CPPFLAGS) -O2 -g $(SANFLAGS) -c -o $@ $<

$(BUILD)/src/%.o: src/%.c $(PB_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/src/%.o: src/%.S
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -c -o $@ $<

$(LIB): $(OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/rtcr: $(BUILD)/src/main.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/unit/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-unused-function -o $@ $< $(LIB) $(LDFLAGS) $(LDLIBS) -lcmocka

$(BUILD)/targets/%: tests/targets/%.c $(wildcard tests/targets/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(TGT_CFLAGS) -o $@ $< -lm

$(BUILD)/targets/%-static: tests/targets/%.c $(wildcard tests/targets/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(TGT_CFLAGS) -static -o $@ $< -lm

$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -std=gnu11 -Wall -D_GNU_SOURCE -o $@ $< -lxxhash -lpthread

unit: $(UNIT_BIN)
	@for t in $(UNIT_BIN); do $$t || exit 1; done

check: all
	scripts/test.sh --no-deps

clean:
	rm -rf build build-san

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
