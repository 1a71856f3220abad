"""Face geometry shared by the renderer, the lip-sync model and the camera (numpy only)."""
