#ifndef RTCR_CMD_H
#define RTCR_CMD_H
int cmd_inspect(int argc, char **argv);
int cmd_check(int argc, char **argv);
#endif
