# Process trees: every descendant with the same pids, parent links,
# process groups, sessions, zombies, stopped members, shared memory and
# pipes between members. Targets: tests/targets/tree*.c (their header
# comments say what they check), and unmodified Debian programs.

test_tree_pipe_shm_zombie() { cycle tree; }
