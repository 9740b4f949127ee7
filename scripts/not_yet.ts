// Placeholder for a task whose component arrives with a later issue; it says so and fails.
const [name, issue] = Deno.args;
console.error(`deno task ${name}: not built yet; it arrives with ${issue}.`);
Deno.exit(1);
