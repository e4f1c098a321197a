#ifndef RTCR_VERSION_H
#define RTCR_VERSION_H
#define RTCR_VERSION "0.1.0"
#endif
