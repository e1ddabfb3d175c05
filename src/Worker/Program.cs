using VixAspire.Worker;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddWorkerServices();

var app = builder.Build();

// The worker has no public API: health endpoints only, for the orchestrator.
app.MapDefaultEndpoints();

app.Run();
