/*
 * display_render.h — the text of the display: the tty panel, the plain and
 * JSON progress lines and the final summary, made from the scheduler's
 * figures and the display's state (display.c decides when and where they are
 * written).
 */
#ifndef AQ_DISPLAY_RENDER_H
#define AQ_DISPLAY_RENDER_H

#include "display_state.h"

/* The tty panel into d->next; returns its number of lines. */
int render_panel(aq_display *d);
/* One plain progress line (no newline) into b. */
void render_plain(aq_display *d, aq_buf *b);
/* One JSON object (no newline) into b; `final` adds the summary figures. */
void render_json(aq_display *d, aq_buf *b, int final, const char *why);
/* The final summary: a line, then up to AQ_DISPLAY_KEPT_FAILURES failures. */
void render_summary(aq_display *d, aq_buf *b, const char *why);

#endif
