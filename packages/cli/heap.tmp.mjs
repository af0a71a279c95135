const mods = process.argv.slice(2);
const mb = () => {
  gc();
  gc();
  return (process.memoryUsage().heapUsed / 1e6).toFixed(1);
};
console.log('base', mb());
for (const m of mods) {
  await import(m);
  console.log(m, mb());
}
