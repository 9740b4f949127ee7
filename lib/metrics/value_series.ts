// The series of a counter or a gauge: one number under one set of label values.

import type { Series } from "./metric.ts";

export class ValueSeries implements Series {
  readonly labelText: string;
  /** One slot: an update stores in place, where a number field may box a new double per update. */
  protected readonly slot = new Float64Array(1);

  constructor(labelText: string) {
    this.labelText = labelText;
  }

  get value(): number {
    return this.slot[0];
  }
}
