// SPDX-License-Identifier: GPL-2.0
/* status: the other XDP and tc programs on each protected interface. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "base/json.h"
#include "cli/cli.h"
#include "fastpath/coexist.h"

/* One program as a JSON object: only the fields its hook has. Names come
 * from whoever loaded the program: json_text() makes them valid UTF-8. */
static json_t *other_json(const struct coexist_prog *p)
{
	json_t *o = json_pack("{s:s, s:I, s:o}", "hook", coexist_hook_name(p->hook),
			      "prog_id", (json_int_t)p->id, "name", json_text(p->name));

	if (o && p->hook == COEXIST_XDP) {
		if (json_object_set_new(o, "mode", json_string(p->mode)))
			goto fail;
	} else if (o && json_object_update_new(o, json_pack("{s:o, s:I, s:I, s:I}",
			"kind", json_text(p->kind), "prio", (json_int_t)p->prio,
			"handle", (json_int_t)p->handle, "protocol", (json_int_t)p->protocol))) {
		goto fail;
	}
	return o;
fail:
	json_decref(o);
	return NULL;
}

/* Where p runs against imapguard (in our_mode) on arriving packets: the
 * order is what a user needs to reason about two verdicts. Egress filters
 * never see them. */
static const char *order(const struct coexist_prog *p, int our_mode)
{
	bool before;

	if (p->hook == COEXIST_TC_EGRESS)
		return "";
	if (p->hook == COEXIST_XDP)	/* offloaded XDP runs on the NIC, first */
		before = our_mode == IG_MODE_TC || !strcmp(p->mode, "hw");
	else if (our_mode != IG_MODE_TC)
		before = false;		/* XDP runs before any tc filter */
	else if (p->prio != IG_TC_PRIO)
		before = p->prio < IG_TC_PRIO;	/* tc runs filters by prio */
	else
		return "";
	return before ? " (runs before imapguard)" : " (runs after imapguard)";
}

int status_others(const struct coexist_ours *ours, unsigned int ifindex, int our_mode,
		  json_t *obj)
{
	struct coexist_list l;
	json_t *arr = obj ? json_array() : NULL;
	char what[160];
	int err;

	if (obj && !arr)
		return -ENOMEM;
	coexist_list_init(&l);
	err = coexist_scan(ifindex, ours, &l);
	for (size_t i = 0; !err && i < l.n; i++) {
		const struct coexist_prog *p = &l.v[i];

		if (p->ours)
			continue;
		if (arr) {
			if (json_array_append_new(arr, other_json(p)))
				err = -ENOMEM;
			continue;
		}
		coexist_describe(p, what, sizeof(what));
		printf("    beside: ");
		print_clean(what);
		printf("%s\n", order(p, our_mode));
	}
	if (!err && l.truncated && !arr)
		printf("    beside: (more than %d, not shown)\n", COEXIST_MAX);
	coexist_list_free(&l);
	if (err == -ENODEV)	/* gone meanwhile: nothing beside it */
		err = 0;
	if (err && err != -ENOMEM) {	/* a listing, not worth failing status for */
		pr_warn("Couldn't list the other programs on ifindex %u: %s", ifindex,
			strerror(-err));
		json_decref(arr);
		return 0;
	}
	if (arr && !err && json_object_set_new(obj, "others", arr))
		return -ENOMEM;
	if (arr && err)
		json_decref(arr);
	return err;
}
