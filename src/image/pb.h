/* All generated protobuf-c message types of the image schema (proto/). */
#ifndef RTCR_IMAGE_PB_H
#define RTCR_IMAGE_PB_H
#include "inventory.pb-c.h"
#include "core.pb-c.h"
#include "mm.pb-c.h"
#include "fd.pb-c.h"
#include "memobj.pb-c.h"
#endif
