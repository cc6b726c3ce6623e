// star-plugin-snapshot OUT.png: renders the plugin's editor headless (no display, no host)
// into a PNG, for the README. Built only with -DSTAR_BUILD_SNAPSHOT=ON. Run it from inside a
// built bundle (STAR.vst3/Contents/x86_64-linux/) to show the bundled model and textures.
#include <juce_audio_processors/juce_audio_processors.h>
#include <juce_gui_basics/juce_gui_basics.h>

#include <cstdio>
#include <memory>

juce::AudioProcessor* JUCE_CALLTYPE createPluginFilter();

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: star-plugin-snapshot OUT.png\n");
    return 2;
  }
  juce::ScopedJuceInitialiser_GUI gui;
  std::unique_ptr<juce::AudioProcessor> processor(createPluginFilter());
  std::unique_ptr<juce::AudioProcessorEditor> editor(processor->createEditorIfNeeded());
  if (!editor) {
    std::fprintf(stderr, "star-plugin-snapshot: the plugin has no editor\n");
    return 1;
  }
  // The editor as a user sees it after the first seconds: JUCE's start-up splash (shown
  // briefly under the GPL licence; headless it never fades) is left out of the picture.
  for (juce::Component* child : editor->getChildren())
    if (dynamic_cast<juce::JUCESplashScreen*>(child) != nullptr) child->setVisible(false);
  juce::Image image = editor->createComponentSnapshot(editor->getLocalBounds(), true, 2.0f);
  juce::File file(juce::File::getCurrentWorkingDirectory().getChildFile(argv[1]));
  file.deleteFile();
  juce::FileOutputStream out(file);
  juce::PNGImageFormat png;
  if (!out.openedOk() || !png.writeImageToStream(image, out)) {
    std::fprintf(stderr, "star-plugin-snapshot: cannot write '%s'\n", argv[1]);
    return 1;
  }
  processor->editorBeingDeleted(editor.get());
  editor.reset();
  std::printf("%s %dx%d\n", file.getFullPathName().toRawUTF8(), image.getWidth(),
              image.getHeight());
  return 0;
}
