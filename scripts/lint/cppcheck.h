/* SPDX-License-Identifier: GPL-2.0 */
/* Macros cppcheck cannot see through without the system headers (which
 * `make lint` leaves out for speed): given their shape here. */
#define LIBBPF_OPTS(TYPE, NAME, ...) struct TYPE NAME = { __VA_ARGS__ }
#define json_object_foreach(object, key, value) \
	for (key = json_object_iter_key(json_object_iter(object)); key; key = NULL)
#define json_array_foreach(array, index, value) \
	for (index = 0; index < json_array_size(array) && (value = json_array_get(array, index)); index++)
#define bpf_object__for_each_program(pos, obj) \
	for ((pos) = bpf_object__next_program((obj), NULL); (pos); \
	     (pos) = bpf_object__next_program((obj), (pos)))
